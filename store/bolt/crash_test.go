package bolt_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// crashChildEnv switches the test binary into the crash child; it holds the
// database path.
const crashChildEnv = "TB_CRASH_CHILD"

const (
	crashWriters = 32
	crashAcks    = 2000 // acknowledgements before SIGKILL
)

// TestCrashDurability kills a process that is writing concurrently and
// checks that every write it acknowledged is in the file. SIGKILL leaves
// the page cache intact, so this proves that acknowledgement follows the
// commit (the group committer never answers early); surviving power loss
// additionally relies on bbolt's fsync, which Open never disables.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process writing for a few seconds")
	}
	path := filepath.Join(t.TempDir(), "crash.db") // a real disk here, not tmpfs
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for r := 1; r <= 3; r++ {
		if err := s.CreateRole(t.Context(), storetest.NewRole(storetest.RoleID(r))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Safety net only: the kill normally comes from the acknowledgement count.
	safety := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer safety.Stop()

	var acked []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // lines written before the kill are still in the pipe
		id, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		acked = append(acked, id)
		if len(acked) == crashAcks {
			_ = cmd.Process.Kill() // SIGKILL
		}
	}
	waitErr := cmd.Wait()
	if len(acked) < crashAcks {
		t.Fatalf("child stopped after %d acknowledgements (%v); stderr:\n%s", len(acked), waitErr, stderr.String())
	}

	// The child wrote, so its file names no free-page list: this Open
	// rebuilds it from the pages (freelist.go).
	if saved, ok := bolt.FreelistSaved(path); !ok || saved {
		t.Fatalf("after SIGKILL: free-page list saved = %v (valid meta page: %v), want an absent list", saved, ok)
	}
	s, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	lost := 0
	for _, id := range acked {
		if _, err := s.GetToken(context.Background(), id); err != nil {
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged token %s: %v", id, err)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged tokens lost", lost, len(acked))
	}
	t.Logf("all %d acknowledged tokens survived SIGKILL", len(acked))
}

// TestCrashChild is the child process of TestCrashDurability: it creates
// tokens from crashWriters goroutines and prints each client ID only after
// CreateToken returned nil, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestCrashDurability")
	}
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var (
		mu sync.Mutex // keeps acknowledgement lines whole
		wg sync.WaitGroup
	)
	for g := range crashWriters {
		wg.Go(func() {
			// Bounded so that an orphaned child ends by itself.
			for i := range 100_000 {
				tok := storetest.NewToken(storetest.ClientID(g*1_000_000+i),
					storetest.RoleID(1), storetest.RoleID(2), storetest.RoleID(3))
				if err := s.CreateToken(context.Background(), tok); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", tok.ClientID) // os.Stdout is unbuffered
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
