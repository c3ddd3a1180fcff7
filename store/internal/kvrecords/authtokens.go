package kvrecords

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// Auth-token MACs never appear in errors or logs: they are lookup keys of
// live credentials. Errors name the principal instead, where known.

// principalBucket is the bucket holding principals of kind, nil for an
// unknown kind.
func principalBucket(tx kv.Tx, kind string) kv.Bucket {
	switch kind {
	case store.PrincipalApplicationToken:
		return tx.Bucket(bucketTokens)
	case store.PrincipalUser:
		return tx.Bucket(bucketUsers)
	}
	return nil
}

// prepareAuthToken validates and encodes an auth token outside the write
// transaction.
func prepareAuthToken(t store.AuthToken) ([]byte, error) {
	if err := checkMAC("auth token", t.MAC); err != nil {
		return nil, err
	}
	switch t.PrincipalKind {
	case store.PrincipalApplicationToken:
		if err := checkID("client", t.PrincipalID); err != nil {
			return nil, err
		}
	case store.PrincipalUser:
		if err := checkID("user", t.PrincipalID); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown principal kind %q", t.PrincipalKind)
	}
	return toAuthTokenRecord(t).encode()
}

// deleteAuthTokenTx removes an auth token record and the index entries
// derived from the stored record.
func deleteAuthTokenTx(tx kv.Tx, mac []byte, rec authTokenRecord) error {
	if err := tx.Bucket(bucketAuthByUse).Delete(useIndexKey(rec.LastUsed, mac)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketAuthByPrinc).Delete(principalKey(rec.PrincipalKind, rec.PrincipalID, mac)); err != nil {
		return err
	}
	return tx.Bucket(bucketAuthTokens).Delete(mac)
}

// deleteAuthTokensOfTx removes every auth token minted for the principal:
// the cascade of DeleteToken, DeleteExpiredTokens and DeleteUser. Keys are
// collected before deleting, as bbolt cursors must not see their bucket
// change under them.
func deleteAuthTokensOfTx(tx kv.Tx, kind, principalID string) (int, error) {
	prefix := principalPrefix(kind, principalID)
	var keys [][]byte
	c := tx.Bucket(bucketAuthByPrinc).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return deleteAuthTokensByKeys(tx, prefix, keys)
}

// deleteAuthTokensByKeys removes the auth tokens under keys, keys of
// auth_tokens_by_principal starting with prefix, with their index entries.
func deleteAuthTokensByKeys(tx kv.Tx, prefix []byte, keys [][]byte) (int, error) {
	auth := tx.Bucket(bucketAuthTokens)
	n := 0
	for _, k := range keys {
		mac := k[len(prefix):]
		v := auth.Get(mac)
		if v == nil {
			// A stray entry (damaged file) must not block revoking the
			// principal: drop it.
			if err := tx.Bucket(bucketAuthByPrinc).Delete(k); err != nil {
				return 0, err
			}
			continue
		}
		rec, err := decodeAuthTokenRecord(v)
		if err != nil {
			return 0, err
		}
		if err := deleteAuthTokenTx(tx, mac, rec); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// CreateAuthToken implements store.Store.
func (s *Records) CreateAuthToken(ctx context.Context, t store.AuthToken) error {
	val, err := prepareAuthToken(t)
	if err != nil {
		return fmt.Errorf("create auth token: %w", err)
	}
	mac := t.MAC
	kind, principalID := t.PrincipalKind, t.PrincipalID
	princKey := principalKey(kind, principalID, mac)
	useKey := useIndexKey(t.LastUsed, mac)
	err = s.update(ctx, func(tx kv.Tx) error {
		auth := tx.Bucket(bucketAuthTokens)
		if auth.Get(mac) != nil {
			return store.ErrAlreadyExists
		}
		if principalBucket(tx, kind).Get([]byte(principalID)) == nil {
			return fmt.Errorf("principal: %w", store.ErrNotFound)
		}
		if err := auth.Put(mac, val); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAuthByPrinc).Put(princKey, []byte{}); err != nil {
			return err
		}
		return tx.Bucket(bucketAuthByUse).Put(useKey, []byte{})
	})
	if err != nil {
		return fmt.Errorf("create auth token for %s %q: %w", kind, principalID, err)
	}
	return nil
}

// GetAuthToken implements store.Store. It is on the credential-check path:
// one short read transaction, one lookup, one decode.
func (s *Records) GetAuthToken(ctx context.Context, mac []byte) (store.AuthToken, error) {
	var t store.AuthToken
	err := s.view(func(tx kv.Tx) error {
		if len(mac) == 0 {
			return store.ErrNotFound // bbolt has no empty keys
		}
		v := tx.Bucket(bucketAuthTokens).Get(mac)
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeAuthTokenRecord(v)
		t = rec.authToken()
		return err
	})
	if err != nil {
		return store.AuthToken{}, fmt.Errorf("get auth token: %w", err)
	}
	return t, nil
}

// ResolveAuthToken implements store.Store: the auth token and its
// principal in one read transaction.
func (s *Records) ResolveAuthToken(ctx context.Context, mac []byte) (store.ResolvedAuthToken, error) {
	var r store.ResolvedAuthToken
	err := s.view(func(tx kv.Tx) error {
		if len(mac) == 0 {
			return store.ErrNotFound // bbolt has no empty keys
		}
		v := tx.Bucket(bucketAuthTokens).Get(mac)
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeAuthTokenRecord(v)
		if err != nil {
			return err
		}
		r.AuthToken = rec.authToken()
		switch rec.PrincipalKind {
		case store.PrincipalApplicationToken:
			pv := tx.Bucket(bucketTokens).GetString(rec.PrincipalID)
			if pv == nil {
				return fmt.Errorf("principal %s %q: %w", rec.PrincipalKind, rec.PrincipalID, store.ErrNotFound)
			}
			t, err := decodeTokenRecord(rec.PrincipalID, pv)
			if err != nil {
				return err
			}
			r.Roles, r.Expiry = t.Roles, t.Expiry
		case store.PrincipalUser:
			pv := tx.Bucket(bucketUsers).GetString(rec.PrincipalID)
			if pv == nil {
				return fmt.Errorf("principal %s %q: %w", rec.PrincipalKind, rec.PrincipalID, store.ErrNotFound)
			}
			u, err := decodeUserRecord(pv)
			if err != nil {
				return err
			}
			r.Roles = u.Roles
		default:
			return fmt.Errorf("principal kind %q: %w", rec.PrincipalKind, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return store.ResolvedAuthToken{}, fmt.Errorf("resolve auth token: %w", err)
	}
	return r, nil
}

// DeleteAuthToken implements store.Store.
func (s *Records) DeleteAuthToken(ctx context.Context, mac []byte) error {
	key := mac
	err := s.update(ctx, func(tx kv.Tx) error {
		if len(key) == 0 {
			return store.ErrNotFound
		}
		v := tx.Bucket(bucketAuthTokens).Get(key)
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeAuthTokenRecord(v)
		if err != nil {
			return err
		}
		return deleteAuthTokenTx(tx, key, rec)
	})
	if err != nil {
		return fmt.Errorf("delete auth token: %w", err)
	}
	return nil
}

// RecordAuthTokenUse implements store.Store. The auth_tokens_by_use entry
// moves with LastUsed in the same transaction, so DeleteIdleAuthTokens'
// range scan always sees the stored time. In a backend with bounded
// transactions the tokens are written in several, each token whole (its
// record and both index operations: three operations), as RecordTokenUse
// does.
func (s *Records) RecordAuthTokenUse(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	macs := slices.Sorted(maps.Keys(lastUsed))
	written, err := s.inChunks(ctx, len(macs), s.perTxn(3), func(ctx context.Context, lo, hi int) error {
		return s.update(ctx, func(tx kv.Tx) error {
			auth := tx.Bucket(bucketAuthTokens)
			byUse := tx.Bucket(bucketAuthByUse)
			for _, mac := range macs[lo:hi] {
				if mac == "" {
					continue // no such key in bbolt
				}
				used := lastUsed[mac]
				key := []byte(mac)
				v := auth.Get(key)
				if v == nil {
					continue // deleted meanwhile
				}
				rec, err := decodeAuthTokenRecord(v)
				if err != nil {
					return err
				}
				if !used.After(rec.LastUsed) {
					continue
				}
				oldUse := useIndexKey(rec.LastUsed, key)
				rec.LastUsed = used.UTC()
				val, err := rec.encode()
				if err != nil {
					return fmt.Errorf("auth token of %s %q: %w", rec.PrincipalKind, rec.PrincipalID, err)
				}
				if err := auth.Put(key, val); err != nil {
					return err
				}
				if err := byUse.Delete(oldUse); err != nil {
					return err
				}
				if err := byUse.Put(useIndexKey(rec.LastUsed, key), []byte{}); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return chunksErr("record auth token use", len(macs), "tokens", written, err)
	}
	return nil
}

// DeleteIdleAuthTokens implements store.Store, in two passes that, like
// DeleteExpiredTokens, alternate a short read transaction collecting up to
// s.gcChunk candidates with a write transaction that re-checks and deletes
// them:
//
//   - idle: auth_tokens_by_use up to idleSince. The write re-reads each
//     record, so a token whose use was recorded after the scan (its LastUsed
//     now after idleSince) is kept. Its cost is the number of idle tokens.
//   - orphans: auth_tokens_by_principal, one principal lookup per distinct
//     principal, on the first call after New only (until one completes).
//     Its cost is every auth token in the store: at 100,000 auth tokens of
//     as many principals it took about 0.37 s of CPU, which on the broker's
//     one-minute timer was nearly all of an idle broker's CPU. It finds
//     nothing unless a binary that predates the cascades deleted principals
//     (every deletion path of this one cascades), and such a binary wrote
//     before this open. The one exception, an older replica of an etcd
//     cluster that is still running, can only leave tokens that no longer
//     authenticate (the principal is resolved on every use), so their
//     LastUsed stays put and the idle pass removes them within the TTL.
//
// On error it returns how many it had removed so far.
func (s *Records) DeleteIdleAuthTokens(ctx context.Context, idleSince time.Time) (int, error) {
	total := 0
	limit := useNanos(idleSince)
	var resume []byte
	for {
		macs, last, err := s.idleCandidates(resume, limit)
		if err != nil {
			return total, fmt.Errorf("delete idle auth tokens: %w", err)
		}
		n, err := s.deleteAuthTokensIf(ctx, macs, func(_ kv.Tx, rec authTokenRecord) bool {
			return !rec.LastUsed.After(idleSince)
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("delete idle auth tokens: %w", err)
		}
		if len(macs) < s.gcChunk {
			break
		}
		resume = last
	}
	if s.orphansSwept.Load() {
		return total, nil
	}
	n, err := s.deleteOrphanedAuthTokens(ctx)
	if err == nil {
		s.orphansSwept.Store(true)
	}
	return total + n, err
}

// deleteOrphanedAuthTokens is DeleteIdleAuthTokens' orphan pass.
func (s *Records) deleteOrphanedAuthTokens(ctx context.Context) (int, error) {
	total := 0
	var start []byte
	for {
		macs, next, err := s.orphanCandidates(start)
		if err != nil {
			return total, fmt.Errorf("delete orphaned auth tokens: %w", err)
		}
		n, err := s.deleteAuthTokensIf(ctx, macs, func(tx kv.Tx, rec authTokenRecord) bool {
			return isOrphan(tx, rec.PrincipalKind, rec.PrincipalID)
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("delete orphaned auth tokens: %w", err)
		}
		if next == nil {
			return total, nil
		}
		start = next
	}
}

// isOrphan: the principal is of a known kind and does not exist. An unknown
// kind (impossible through CreateAuthToken) is left alone rather than
// guessed at; the idle pass still collects such a token.
func isOrphan(tx kv.Tx, kind, principalID string) bool {
	b := principalBucket(tx, kind)
	return b != nil && b.Get([]byte(principalID)) == nil
}

// deleteAuthTokensIf deletes, in one write transaction, each auth token of
// macs that still exists and for which del (evaluated on the stored record,
// inside the transaction) holds.
func (s *Records) deleteAuthTokensIf(ctx context.Context, macs [][]byte, del func(kv.Tx, authTokenRecord) bool) (int, error) {
	if len(macs) == 0 {
		return 0, nil
	}
	var n int
	err := s.update(ctx, func(tx kv.Tx) error {
		n = 0 // the function may be re-run
		auth := tx.Bucket(bucketAuthTokens)
		for _, mac := range macs {
			v := auth.Get(mac)
			if v == nil {
				continue
			}
			rec, err := decodeAuthTokenRecord(v)
			if err != nil {
				return err
			}
			if !del(tx, rec) {
				continue
			}
			if err := deleteAuthTokenTx(tx, mac, rec); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// idleCandidates returns the MACs of up to s.gcChunk auth_tokens_by_use keys
// after resume (from the start if nil) whose time is at or before
// limitNanos, and the last key it returned.
func (s *Records) idleCandidates(resume []byte, limitNanos uint64) (macs [][]byte, last []byte, err error) {
	err = s.view(func(tx kv.Tx) error {
		c := tx.Bucket(bucketAuthByUse).Cursor()
		k, _ := c.First()
		if resume != nil {
			k, _ = c.Seek(resume)
			if bytes.Equal(k, resume) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(macs) < s.gcChunk; k, _ = c.Next() {
			if len(k) <= 8 {
				return fmt.Errorf("corrupt auth_tokens_by_use key %x", k)
			}
			if binary.BigEndian.Uint64(k[:8]) > limitNanos {
				break
			}
			last = bytes.Clone(k)
			macs = append(macs, last[8:])
		}
		return nil
	})
	return macs, last, err
}

// orphanCandidates walks auth_tokens_by_principal from start (inclusive;
// from the beginning if nil). It looks up each distinct principal once,
// skips over the entries of one that exists, and collects the MACs of one
// that does not. It stops after s.gcChunk principals or s.gcChunk MACs and
// returns the key to resume at, nil when the walk is complete.
func (s *Records) orphanCandidates(start []byte) (macs [][]byte, next []byte, err error) {
	err = s.view(func(tx kv.Tx) error {
		c := tx.Bucket(bucketAuthByPrinc).Cursor()
		k, _ := c.First()
		if start != nil {
			k, _ = c.Seek(start)
		}
		principals := 0
		for k != nil {
			if principals == s.gcChunk || len(macs) == s.gcChunk {
				next = bytes.Clone(k)
				return nil
			}
			principals++
			kind, id, _, err := splitPrincipalKey(k)
			if err != nil {
				return err
			}
			prefix := principalPrefix(kind, id)
			if !isOrphan(tx, kind, id) {
				// The first key after every kind 0x00 id 0x00 ... key.
				prefix[len(prefix)-1] = 1
				k, _ = c.Seek(prefix)
				continue
			}
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(macs) < s.gcChunk; k, _ = c.Next() {
				macs = append(macs, bytes.Clone(k[len(prefix):]))
			}
		}
		return nil
	})
	return macs, next, err
}
