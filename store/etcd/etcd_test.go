package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/etcd"
	"github.com/tokenbroker/tokenbroker/store/etcd/etcdtest"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	etcdtest.StopShared()
	os.Exit(code)
}

var prefixes atomic.Int64

// freshPrefix returns a key prefix no other test of this run uses.
func freshPrefix() string {
	return fmt.Sprintf("/test-%d-%d/", os.Getpid(), prefixes.Add(1))
}

// openTemp opens a store on the shared etcd under a fresh prefix, closed
// when the test ends.
func openTemp(t testing.TB, opts etcd.Options) *etcd.Store {
	t.Helper()
	srv := etcdtest.Shared(t)
	opts.Endpoints = []string{srv.Endpoint}
	if opts.Prefix == "" {
		opts.Prefix = freshPrefix()
	}
	s, err := etcd.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, etcd.Options{})
	})
}

func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		prefix := freshPrefix()
		return openTemp(t, etcd.Options{Prefix: prefix}), openTemp(t, etcd.Options{Prefix: prefix})
	})
}

// rawClient is a plain etcd client on the shared server, to set up and
// inspect keys behind the store's back.
func rawClient(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdtest.Shared(t).Endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func TestNewPrefixGetsSchemaVersion2(t *testing.T) {
	prefix := freshPrefix()
	openTemp(t, etcd.Options{Prefix: prefix})
	resp, err := rawClient(t).Get(t.Context(), prefix+"meta/schema_version")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("schema version = %v, want \"2\"", resp.Kvs)
	}
}

func TestRefusesUnknownSchemaVersion(t *testing.T) {
	prefix := freshPrefix()
	if _, err := rawClient(t).Put(t.Context(), prefix+"meta/schema_version", "99"); err != nil {
		t.Fatal(err)
	}
	_, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{etcdtest.Shared(t).Endpoint}, Prefix: prefix})
	if !errors.Is(err, etcd.ErrUnsupportedSchema) {
		t.Fatalf("Open = %v, want ErrUnsupportedSchema", err)
	}
}

func TestRefusesForeignPrefix(t *testing.T) {
	prefix := freshPrefix()
	if _, err := rawClient(t).Put(t.Context(), prefix+"someone-elses-key", "x"); err != nil {
		t.Fatal(err)
	}
	_, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{etcdtest.Shared(t).Endpoint}, Prefix: prefix})
	if err == nil || !strings.Contains(err.Error(), "not a tokenbroker prefix") {
		t.Fatalf("Open = %v, want a refusal", err)
	}
}

// TestReopenAfterCompaction: a handle opened after etcd compacted the
// prefix's history loads the current data and follows later writes.
func TestReopenAfterCompaction(t *testing.T) {
	prefix := freshPrefix()
	a := openTemp(t, etcd.Options{Prefix: prefix})
	ctx := t.Context()
	must(t, a.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))))
	resp, err := rawClient(t).Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawClient(t).Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	b := openTemp(t, etcd.Options{Prefix: prefix})
	if _, err := b.GetRole(ctx, storetest.RoleID(1)); err != nil {
		t.Fatalf("role after compaction: %v", err)
	}
	must(t, a.CreateToken(ctx, storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))))
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := b.GetToken(ctx, storetest.ClientID(1)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never saw a's token after the compaction")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWatchRecoversFromCompaction: a watch that falls behind a compaction
// (its next revision is no longer in etcd's history) makes the mirror
// reload the prefix; writes made meanwhile by another broker are then
// visible, and later ones keep arriving.
func TestWatchRecoversFromCompaction(t *testing.T) {
	prefix := freshPrefix()
	ctx := t.Context()
	a := openTemp(t, etcd.Options{Prefix: prefix})
	b := openTemp(t, etcd.Options{Prefix: prefix})
	must(t, a.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))))
	must(t, a.CreateToken(ctx, storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))))
	resp, err := rawClient(t).Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawClient(t).Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	etcd.RewatchFrom(b, 1) // as if b had been cut off since revision 1
	waitFor(t, "a reload after the compaction", func() bool { return etcd.Reloads(b) > 0 })
	if _, err := b.GetToken(ctx, storetest.ClientID(1)); err != nil {
		t.Fatalf("token after the reload: %v", err)
	}
	must(t, a.DeleteToken(ctx, storetest.ClientID(1)))
	waitFor(t, "the delete after the reload", func() bool {
		_, err := b.GetToken(ctx, storetest.ClientID(1))
		return errors.Is(err, store.ErrNotFound)
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
