package servertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokenbroker/tokenbroker/server"
)

// StoredData returns everything the backend holds at rest, for scans that
// prove a secret was never stored: on bbolt the whole data file (free pages
// included); on etcd every key and value under the Env's prefix, both as
// they are now and in every revision of etcd's history (etcd keeps
// overwritten and deleted values until a compaction, as bbolt keeps freed
// pages), each followed by a newline so that no match can span two of them.
// It may be called while the server runs or after Shutdown.
func (e *Env) StoredData(t testing.TB) []byte {
	t.Helper()
	if e.Store != server.StoreEtcd {
		data, err := os.ReadFile(e.DataPath)
		if err != nil {
			t.Fatalf("servertest: read the data file: %v", err)
		}
		return data
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := e.etcdClient(t)
	defer cli.Close()

	var out bytes.Buffer
	add := func(kv ...[]byte) {
		for _, b := range kv {
			out.Write(b)
			out.WriteByte('\n')
		}
	}
	now, err := cli.Get(ctx, e.EtcdPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("servertest: read prefix %s: %v", e.EtcdPrefix, err)
	}
	for _, kv := range now.Kvs {
		add(kv.Key, kv.Value)
	}
	// The history: a watch from revision 1 replays every change under the
	// prefix, with the value each one replaced. A progress notification at
	// or past head says every change up to head was delivered (etcd sends
	// one only once the watch has caught up, so it is asked for until then).
	head := now.Header.Revision
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	events := cli.Watch(wctx, e.EtcdPrefix, clientv3.WithPrefix(), clientv3.WithRev(1), clientv3.WithPrevKV())
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			_ = cli.RequestProgress(wctx)
			continue
		case resp, ok := <-events:
			if !ok {
				t.Fatalf("servertest: watch of the history of %s ended early: %v", e.EtcdPrefix, ctx.Err())
			}
			if resp.CompactRevision != 0 {
				t.Fatalf("servertest: etcd history compacted up to revision %d: the scan would miss values", resp.CompactRevision)
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("servertest: watch the history of %s: %v", e.EtcdPrefix, err)
			}
			for _, ev := range resp.Events {
				add(ev.Kv.Key, ev.Kv.Value)
				if ev.PrevKv != nil {
					add(ev.PrevKv.Value)
				}
			}
			if resp.IsProgressNotify() && resp.Header.Revision >= head {
				return out.Bytes()
			}
		}
	}
}

// StoredBucket returns the records of one bucket of the store's layout
// (store/etcd/schema.go: the same buckets on both backends), key to value,
// as they are now. On bbolt the server must be stopped (bbolt locks its
// file).
func (e *Env) StoredBucket(t testing.TB, bucket string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if e.Store != server.StoreEtcd {
		db, err := bbolt.Open(e.DataPath, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("servertest: open %s: %v", e.DataPath, err)
		}
		defer db.Close()
		err = db.View(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte(bucket))
			if b == nil {
				return fmt.Errorf("no bucket %q", bucket)
			}
			return b.ForEach(func(k, v []byte) error {
				out[string(k)] = bytes.Clone(v)
				return nil
			})
		})
		if err != nil {
			t.Fatalf("servertest: read %s: %v", e.DataPath, err)
		}
		return out
	}
	cli := e.etcdClient(t)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := e.EtcdPrefix + bucket + "/"
	resp, err := cli.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("servertest: read %s: %v", p, err)
	}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), p)] = kv.Value
	}
	return out
}

func (e *Env) etcdClient(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.EtcdEndpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("servertest: etcd client: %v", err)
	}
	return cli
}
