package etcd_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/etcd"
	"github.com/tokenbroker/tokenbroker/store/etcd/etcdtest"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// Writes whose size depends on their input, against etcd's --max-txn-ops.

// statsReport returns a report of n namespaces spread over tenants.
func statsReport(tenants []string, n int) []store.NamespaceStats {
	out := make([]store.NamespaceStats, n)
	for i := range out {
		out[i] = storetest.NewNamespaceStats(tenants[i%len(tenants)], fmt.Sprintf("ns-%04d", i))
	}
	return out
}

func createTenants(t *testing.T, s store.Store, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = storetest.TenantName(i)
		if err := s.CreateTenant(t.Context(), storetest.NewTenant(names[i])); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// openWithReport opens a store on a fresh prefix of the shared member and
// stores a report of namespaces over that many tenants.
func openWithReport(t *testing.T, tenants, namespaces int) (s *etcd.Store, prefix string, names []string) {
	t.Helper()
	prefix = freshPrefix()
	s = openTemp(t, etcd.Options{Prefix: prefix})
	names = createTenants(t, s, tenants)
	if err := s.PutNamespaceStats(t.Context(), statsReport(names, namespaces)); err != nil {
		t.Fatal(err)
	}
	return s, prefix, names
}

// transactionsUnder counts the transactions that last wrote the keys under
// prefix+bucket: one revision each.
func transactionsUnder(t *testing.T, cli *clientv3.Client, prefix, bucket string) (keys, txns int) {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix+bucket+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	revs := map[int64]bool{}
	for _, kv := range resp.Kvs {
		revs[kv.ModRevision] = true
	}
	return len(resp.Kvs), len(revs)
}

// TestReportSplitWithinMaxTxnOps: with etcd's default limit a report of
// 1,000 namespaces over 300 tenants (1,000 puts, 300 tenant compares) takes
// ceil(1000/126) transactions: 128 operations, less two for an audit event.
func TestReportSplitWithinMaxTxnOps(t *testing.T) {
	_, prefix, _ := openWithReport(t, 300, 1000)
	keys, txns := transactionsUnder(t, rawClient(t), prefix, "namespace_stats")
	if keys != 1000 || txns != 8 {
		t.Fatalf("%d namespace keys written by %d transactions, want 1000 by 8", keys, txns)
	}
}

// TestRaisedMaxTxnOps: on a member started with --max-txn-ops 1024, a store
// opened with MaxTxnOps 1024 writes the same report in one transaction, and
// an append of 1,000 audit events of 8 KiB each, far more bytes than one
// request holds, still succeeds (the parts too large in bytes are halved).
// A store whose MaxTxnOps exceeds its member's setting gets etcd's refusal;
// one below etcd's default is refused at Open.
func TestRaisedMaxTxnOps(t *testing.T) {
	srv, err := etcdtest.Start(func(c *embed.Config) { c.MaxTxnOps = 1024 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	prefix := freshPrefix()
	s, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{srv.Endpoint}, Prefix: prefix, MaxTxnOps: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	tenants := createTenants(t, s, 300)
	if err := s.PutNamespaceStats(t.Context(), statsReport(tenants, 1000)); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	if keys, txns := transactionsUnder(t, cli, prefix, "namespace_stats"); keys != 1000 || txns != 1 {
		t.Fatalf("%d namespace keys written by %d transactions, want 1000 by 1", keys, txns)
	}

	events := make([]store.AuditEvent, 1000)
	for i := range events {
		e := storetest.NewAuditEvent("TokenService.CreateToken", "token", fmt.Sprintf("%04d", i))
		e.Detail = strings.Repeat("d", 1024-len(e.TargetID)) + e.TargetID
		e.RequestID, e.ActorID, e.TargetKind = e.Detail, e.Detail, e.Detail
		e.Action, e.ActorKind, e.Outcome, e.TargetID = e.Detail, e.Detail, e.Detail, e.Detail
		events[i] = e
	}
	if err := s.AppendAuditEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAuditEvents(t.Context(), store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(events) {
		t.Fatalf("%d audit events listed, want %d", len(got), len(events))
	}
	for i := range got {
		if got[i].Seq != uint64(i+1) || got[i].Detail != events[i].Detail {
			t.Fatalf("audit event %d: Seq %d, detail ends %q; want Seq %d, detail ending %q",
				i, got[i].Seq, got[i].Detail[1020:], i+1, events[i].Detail[1020:])
		}
	}
	if _, txns := transactionsUnder(t, cli, prefix, "audit"); txns < 8 {
		t.Fatalf("8 MiB of audit events written by %d transactions", txns)
	}

	// Above the member's own setting: etcd refuses the transaction.
	over := openTemp(t, etcd.Options{MaxTxnOps: 1024})
	overTenants := createTenants(t, over, 1)
	if err := over.PutNamespaceStats(t.Context(), statsReport(overTenants, 1000)); err == nil {
		t.Fatal("a 1,000-operation transaction was accepted by a member limited to 128")
	}

	srvShared := etcdtest.Shared(t)
	if s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: []string{srvShared.Endpoint}, Prefix: freshPrefix(), MaxTxnOps: 64}); err == nil {
		_ = s.Close()
		t.Fatal("Open accepted MaxTxnOps 64")
	} else if !strings.Contains(err.Error(), "MaxTxnOps") {
		t.Fatalf("Open with MaxTxnOps 64: %v, want an error naming MaxTxnOps", err)
	}
}

// TestCreateTenantOverLeftoverStats: statistics a deleted tenant left
// behind (an older binary's DeleteTenant did not delete them), more than
// one transaction deletes, do not stop a tenant of that name from being
// created, and it starts without them.
func TestCreateTenantOverLeftoverStats(t *testing.T) {
	s, prefix, tenants := openWithReport(t, 1, 300)
	cli := rawClient(t)
	if _, err := cli.Delete(t.Context(), prefix+"tenants/"+tenants[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(t.Context(), storetest.NewTenant(tenants[0])); err != nil {
		t.Fatalf("create tenant over 300 leftover namespace snapshots: %v", err)
	}
	if list, err := s.ListNamespaceStats(t.Context(), tenants[0]); err != nil || len(list) != 0 {
		t.Fatalf("the re-created tenant lists %d namespace snapshots (%v), want none", len(list), err)
	}
	if keys, _ := transactionsUnder(t, cli, prefix, "namespace_stats"); keys != 0 {
		t.Fatalf("%d namespace keys left", keys)
	}
}
