package bolt_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// BenchmarkFootprint measures how many bytes of the data file one
// application token costs, with the audit event the broker records with
// it: FOOTPRINT_TOKENS (default 20,000) tokens shaped as the broker makes
// them (24-letter random client ID, one role, a 32-byte HMAC-SHA256) are
// created by 64 concurrent writers (group commit, as under load), each
// with an audit event shaped as the gRPC interceptor fills it. It reports,
// per token, the pages the file uses (its high-water mark, free pages
// included, less the empty store's), and per bucket the pages allocated
// and the bytes of keys and values they hold, so that page fill shows. It
// is a measurement: nothing passes or fails on size. Run with
// -benchtime=1x -v (the breakdown is logged).
func BenchmarkFootprint(b *testing.B) {
	n := 20_000
	if v := os.Getenv("FOOTPRINT_TOKENS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("FOOTPRINT_TOKENS=%q: not a positive integer", v)
		}
	}
	for range b.N {
		path := filepath.Join(b.TempDir(), "footprint.db")
		s, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		role := storetest.NewRole(storetest.RoleID(1))
		if err := s.CreateRole(ctx, role); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		empty := footprintOf(b, path)

		if s, err = bolt.Open(path, bolt.Options{}); err != nil {
			b.Fatal(err)
		}
		admin := randomLetters(24)
		prefix := randomLetters(8) + "-"
		var seq atomic.Uint64
		now := time.Now().UTC()
		fill(b, n, func(int) error {
			id := randomLetters(24)
			mac := sha256.Sum256([]byte(id))
			ev := &store.AuditEvent{
				Time: time.Now().UTC(), RequestID: prefix + strconv.FormatUint(seq.Add(1), 36),
				ActorKind: store.PrincipalApplicationToken, ActorID: admin,
				Action: "TokenService.CreateToken", TargetKind: "token", TargetID: id, Outcome: "success",
			}
			return s.CreateToken(store.WithAudit(ctx, ev), store.Token{
				ClientID: id, OrgID: role.OrgID, Roles: []string{role.ID}, Description: "scale",
				SecretMAC: mac[:], GeneratedOn: now, CreatedBy: admin,
			})
		})
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		full := footprintOf(b, path)

		per := func(v int) float64 { return float64(v) / float64(n) }
		b.ReportMetric(per(full.used-empty.used), "used-B/token")
		b.ReportMetric(per(full.free-empty.free), "free-B/token")
		names := make([]string, 0, len(full.buckets))
		for name := range full.buckets {
			names = append(names, name)
		}
		sort.Strings(names)
		b.Logf("%d tokens: file %d B, used %d B (%.0f B/token over the empty store), free pages %d B",
			n, full.file, full.used, per(full.used-empty.used), full.free)
		for _, name := range names {
			f, e := full.buckets[name], empty.buckets[name]
			if f.KeyN == e.KeyN {
				continue
			}
			alloc := f.BranchAlloc + f.LeafAlloc - e.BranchAlloc - e.LeafAlloc
			inuse := f.BranchInuse + f.LeafInuse - e.BranchInuse - e.LeafInuse
			kv := full.kv[name] - empty.kv[name]
			b.Logf("  %-18s %7d keys  pages %6.1f B/token  in use %6.1f  keys+values %6.1f  fill %3.0f%%",
				name, f.KeyN-e.KeyN, per(alloc), per(inuse), per(kv), 100*float64(inuse)/float64(alloc))
			b.ReportMetric(per(alloc), name+"-B/token")
		}
	}
}

type footprint struct {
	file, used, free int
	buckets          map[string]bbolt.BucketStats
	kv               map[string]int // bytes of keys and values
}

// footprintOf reads a closed store's file directly.
func footprintOf(b *testing.B, path string) footprint {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	f := footprint{file: int(fi.Size()), buckets: map[string]bbolt.BucketStats{}, kv: map[string]int{}}
	err = db.View(func(tx *bbolt.Tx) error {
		f.used = int(tx.Size())
		return tx.ForEach(func(name []byte, bk *bbolt.Bucket) error {
			f.buckets[string(name)] = bk.Stats()
			return bk.ForEach(func(k, v []byte) error {
				f.kv[string(name)] += len(k) + len(v)
				return nil
			})
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	st := db.Stats()
	f.free = (st.FreePageN + st.PendingPageN) * db.Info().PageSize
	return f
}

func randomLetters(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	raw := make([]byte, n)
	if _, err := rand.Read(raw); err != nil {
		panic(fmt.Sprint("crypto/rand: ", err))
	}
	for i := range raw {
		raw[i] = letters[int(raw[i])%len(letters)]
	}
	return string(raw)
}
