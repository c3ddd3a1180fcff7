package bolt_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

func TestRecordCountsAndCommitObserver(t *testing.T) {
	var batches, writes int
	s, err := bolt.Open(filepath.Join(t.TempDir(), "tb.db"), bolt.Options{OnCommit: func(batch int, took time.Duration) {
		// Called on the committer goroutine only; Close waits for it, so
		// reading the totals after Close is ordered after every call.
		batches++
		writes += batch
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	counts, err := s.RecordCounts()
	if err != nil {
		t.Fatal(err)
	}
	if counts[bolt.CountApplicationTokens] != 0 {
		t.Fatalf("fresh store counts %v", counts)
	}
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	org, first := storetest.NewOrganization(), storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))
	if err := s.Bootstrap(ctx, org, first); err != nil {
		t.Fatal(err)
	}
	counts, err = s.RecordCounts()
	if err != nil {
		t.Fatal(err)
	}
	if counts[bolt.CountApplicationTokens] != 1 || counts[bolt.CountAuthTokens] != 0 || counts[bolt.CountPulsarTokens] != 0 {
		t.Fatalf("after bootstrap counts %v, want one application token", counts)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if batches == 0 || writes < batches {
		t.Fatalf("observer saw %d batches of %d writes", batches, writes)
	}
}

func TestOpenNamesANonBboltFile(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"text":    []byte(strings.Repeat("this is not a database\n", 1000)),
		"garbage": bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 4096),
	} {
		path := filepath.Join(dir, name+".db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := bolt.Open(path, bolt.Options{LockTimeout: time.Second})
		if err == nil {
			s.Close()
			t.Fatalf("%s: opened a non-bbolt file", name)
		}
		if !strings.Contains(err.Error(), "not a usable tokenbroker database") {
			t.Errorf("%s: error %q does not say the file is not a database", name, err)
		}
	}
}
