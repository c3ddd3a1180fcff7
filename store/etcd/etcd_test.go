package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

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
