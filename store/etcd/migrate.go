package etcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// Migration from schema version 1 (JSON records) to 2 (protobuf), at open.
// A prefix is far too large for one etcd transaction, so it is migrated in
// steps, each a guarded transaction, and is never left readable as version
// 1 once a value has changed:
//
//  1. the version goes from "1" to schemaMigrating (guarded on "1"). A
//     version-1 binary refuses that version, so none opens a prefix whose
//     records are part converted;
//  2. passes convert every version-1 value of the buckets that changed
//     (kvrecords.V1Conversions), in transactions guarded on the version
//     still being schemaMigrating and on each key's mod revision, so a
//     value another broker changed meanwhile is not overwritten: the next
//     pass sees it again. Converted values are recognised and skipped, so a
//     migration interrupted by a crash resumes where it stopped, and two
//     brokers opening together share the work (each value is converted
//     exactly once, by whichever transaction wins);
//  3. once a pass at revision R finds nothing left to convert, the version
//     goes to "2" in a transaction guarded on no key of the prefix having
//     changed since R: then every record is protobuf at that moment.
//
// Brokers of the old version must be stopped first: one still running
// does not re-read the version and would keep writing JSON records.

// schemaMigrating is the version while a migration from 1 to 2 runs.
const schemaMigrating = "1-migrating-to-2"

// maxMigrationPasses bounds the passes of step 2 and 3; every pass after
// the first exists only because something else wrote to the prefix.
const maxMigrationPasses = 50

// migrateV1 migrates the prefix, whose version is v ("1" or
// schemaMigrating), to schemaVersion.
func (s *Store) migrateV1(ctx context.Context, v string) error {
	verKey := s.prefix + keySchemaVersion
	if v == schemaVersion1 {
		cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
		_, err := s.cli.Txn(cctx).
			If(clientv3.Compare(clientv3.Value(verKey), "=", schemaVersion1)).
			Then(clientv3.OpPut(verKey, schemaMigrating)).
			Commit()
		cancel()
		if err != nil {
			return etcdErr("start schema migration", err)
		}
		// Whether this broker or another one started it, it now runs.
	}
	converted := 0
	for pass := 0; pass < maxMigrationPasses; pass++ {
		cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
		cur, err := s.cli.Get(cctx, verKey)
		cancel()
		if err != nil {
			return etcdErr("schema migration", err)
		}
		switch {
		case len(cur.Kvs) == 1 && string(cur.Kvs[0].Value) == schemaVersion:
			s.log.Info("store migrated", "backend", "etcd", "prefix", s.prefix, "from_schema_version", schemaVersion1,
				"to_schema_version", schemaVersion, "records", converted)
			return nil // done (by this broker or another)
		case len(cur.Kvs) != 1 || string(cur.Kvs[0].Value) != schemaMigrating:
			return fmt.Errorf("schema migration: the schema version changed under it (to %q)", valueOf(cur))
		}
		rev := cur.Header.Revision
		n, pending, err := s.convertPass(ctx, rev)
		if err != nil {
			return err
		}
		converted += n
		if pending {
			continue // converted (or lost a race on) something: look again
		}
		cctx, cancel = context.WithTimeout(ctx, s.opts.CallTimeout)
		_, err = s.cli.Txn(cctx).
			If(clientv3.Compare(clientv3.Value(verKey), "=", schemaMigrating),
				clientv3.Compare(clientv3.ModRevision(s.prefix), "<", rev+1).WithPrefix()).
			Then(clientv3.OpPut(verKey, schemaVersion)).
			Commit()
		cancel()
		if err != nil {
			return etcdErr("finish schema migration", err)
		}
		// Succeeded or not, the next pass reads the version again: "2"
		// ends the loop, a refused compare means the prefix changed.
	}
	return fmt.Errorf("schema migration from %q to %q did not settle after %d passes: something keeps writing records in the old encoding (is a broker of the previous version still running? stop it, then start this one again)",
		schemaVersion1, schemaVersion, maxMigrationPasses)
}

// convertPass reads every bucket that changed encoding at revision rev and
// converts what is still version 1. pending reports that it wrote
// something, or that a guarded write lost to another writer: only a pass
// with nothing pending proves the prefix converted at rev.
func (s *Store) convertPass(ctx context.Context, rev int64) (converted int, pending bool, err error) {
	verKey := s.prefix + keySchemaVersion
	// Per transaction: the version compare, then one compare and one put
	// per value, within both of etcd's limits.
	maxValues := min(s.opts.MaxTxnOps-1, loadPage)
	for _, c := range kvrecords.V1Conversions {
		bucket := s.prefix + string(c.Bucket) + "/"
		from, end := bucket, clientv3.GetPrefixRangeEnd(bucket)
		for {
			cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
			resp, err := s.cli.Get(cctx, from, clientv3.WithRange(end), clientv3.WithLimit(int64(maxValues)), clientv3.WithRev(rev))
			cancel()
			if err != nil {
				return 0, false, etcdErr("schema migration: read "+string(c.Bucket), err)
			}
			cmps := []clientv3.Cmp{clientv3.Compare(clientv3.Value(verKey), "=", schemaMigrating)}
			var puts []clientv3.Op
			size := 0
			flush := func() error {
				if len(puts) == 0 {
					return nil
				}
				cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
				r, err := s.cli.Txn(cctx).If(cmps...).Then(puts...).Commit()
				cancel()
				if err != nil {
					return etcdErr("schema migration: write "+string(c.Bucket), err)
				}
				pending = true
				if r.Succeeded {
					converted += len(puts)
				}
				cmps, puts, size = cmps[:1], nil, 0
				return nil
			}
			for _, kv := range resp.Kvs {
				nv, ok, err := c.Convert(kv.Key[len(bucket):], kv.Value)
				if err != nil {
					return 0, false, fmt.Errorf("schema migration: bucket %s: %w", c.Bucket, err)
				}
				if !ok {
					continue
				}
				if size += 2*len(kv.Key) + len(nv); size > s.opts.MaxTxnBytes/2 {
					if err := flush(); err != nil {
						return 0, false, err
					}
					size = 2*len(kv.Key) + len(nv)
				}
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
				puts = append(puts, clientv3.OpPut(string(kv.Key), string(nv)))
			}
			if err := flush(); err != nil {
				return 0, false, err
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	return converted, pending, nil
}

func valueOf(r *clientv3.GetResponse) string {
	if len(r.Kvs) == 0 {
		return ""
	}
	return string(r.Kvs[0].Value)
}
