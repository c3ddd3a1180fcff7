package etcd_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/tokenbroker/tokenbroker/store/etcd"
)

// TestSyncOnIdleMirror: a mirror with nothing to apply under its prefix
// (the revision it must reach was made by a write elsewhere in etcd: another
// installation's prefix, the election) can only learn that it is current
// from a progress notification. Sync must get one, whatever the context
// it is given, and without the periodic freshness proof's help (pushed out
// to StaleAfter/4 = 15 min here). A sync that depended on that help would
// fail with the call timeout (deadline exceeded), not merely be slow.
func TestSyncOnIdleMirror(t *testing.T) {
	s := openTemp(t, etcd.Options{StaleAfter: time.Hour, CallTimeout: 10 * time.Second})
	cli := rawClient(t)
	outside := func() {
		t.Helper()
		if _, err := cli.Put(context.Background(), freshPrefix()+"elsewhere", "x"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		setup func()
	}{
		{"plain context", context.Background(), nil},
		// A context carrying outgoing gRPC metadata (as a handler's call to
		// another service would): etcd's client picks the watch stream by
		// a context's metadata, so a progress request sent with it would
		// go to a stream without the mirror's watch.
		{"context with outgoing metadata", metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer x"), nil},
		// Just after the watch was re-created while nothing was written:
		// etcd drops progress requests for a watch whose start revision is
		// ahead of its own.
		{"after a re-watch while idle", context.Background(), func() { etcd.RewatchFrom(s, etcd.MirrorRev(s)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			time.Sleep(200 * time.Millisecond) // idle
			outside()
			start, asked := time.Now(), etcd.ProgressRequests(s)
			if err := s.Sync(tc.ctx); err != nil {
				t.Fatalf("sync of an idle mirror after a write outside its prefix: %v (after %s)", err, time.Since(start))
			}
			t.Logf("synced after %s, %d progress requests", time.Since(start), etcd.ProgressRequests(s)-asked)
		})
	}
}
