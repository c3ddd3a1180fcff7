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

// prepareToken validates and encodes a token outside the write transaction,
// so that the committer's critical section holds only lookups and puts.
func prepareToken(t store.Token) ([]byte, error) {
	if err := checkID("client", t.ClientID); err != nil {
		return nil, err
	}
	for _, r := range t.Roles {
		if err := checkID("role", r); err != nil {
			return nil, err
		}
	}
	return encodeToken(t)
}

func encodeToken(t store.Token) ([]byte, error) {
	return toTokenRecord(t).encode()
}

// createTokenTx writes a token record and its index entries. val is the
// encoded t; bbolt keeps a reference to it until commit, so it must not be
// modified afterwards.
func createTokenTx(tx kv.Tx, t store.Token, val []byte) error {
	tokens := tx.Bucket(bucketTokens)
	key := []byte(t.ClientID)
	if tokens.Get(key) != nil {
		return store.ErrAlreadyExists
	}
	roles := tx.Bucket(bucketRoles)
	for _, r := range t.Roles {
		if roles.Get([]byte(r)) == nil {
			return fmt.Errorf("role %q: %w", r, store.ErrNotFound)
		}
	}
	if err := tokens.Put(key, val); err != nil {
		return err
	}
	exp := expiryNanos(t.Expiry)
	byRole := tx.Bucket(bucketTokensByRole)
	for _, r := range t.Roles {
		if err := byRole.Put(roleIndexKey(r, t.ClientID), be64(exp)); err != nil {
			return err
		}
	}
	if exp != 0 {
		return tx.Bucket(bucketTokensByExpiry).Put(expiryIndexKey(exp, t.ClientID), []byte{})
	}
	return nil
}

// deleteTokenTx removes a token record, the index entries derived from the
// stored record (not from anything the caller passed in) and every auth
// token minted from it.
func deleteTokenTx(tx kv.Tx, clientID string, rec tokenRecord) error {
	if _, err := deleteAuthTokensOfTx(tx, store.PrincipalApplicationToken, clientID); err != nil {
		return err
	}
	exp := expiryNanos(rec.Expiry)
	byRole := tx.Bucket(bucketTokensByRole)
	for _, r := range rec.Roles {
		if err := byRole.Delete(roleIndexKey(r, clientID)); err != nil {
			return err
		}
	}
	if exp != 0 {
		if err := tx.Bucket(bucketTokensByExpiry).Delete(expiryIndexKey(exp, clientID)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketTokens).Delete([]byte(clientID))
}

// CreateToken implements store.Store.
func (s *Records) CreateToken(ctx context.Context, t store.Token) error {
	val, err := prepareToken(t)
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.ClientID, err)
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		return createTokenTx(tx, t, val)
	})
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.ClientID, err)
	}
	return nil
}

// GetToken implements store.Store.
func (s *Records) GetToken(ctx context.Context, clientID string) (store.Token, error) {
	return getOne(s, bucketTokens, clientID, "token", func(b []byte) (store.Token, error) { return decodeToken(clientID, b) })
}

// ListTokens implements store.Store. Each page is one short read
// transaction; the cursor is the last client ID returned, so pages stay
// stable while tokens come and go (keys are visited in order, and a key
// greater than the cursor is seen on a later page unless it is deleted
// first).
func (s *Records) ListTokens(ctx context.Context, after string, limit int) ([]store.Token, string, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	var (
		page []store.Token
		next string
	)
	err := s.view(func(tx kv.Tx) error {
		c := tx.Bucket(bucketTokens).Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(page) == limit {
				next = page[len(page)-1].ClientID // there is more
				return nil
			}
			t, err := decodeToken(string(k), v)
			if err != nil {
				return err
			}
			page = append(page, t)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list tokens after %q: %w", after, err)
	}
	return page, next, nil
}

// DeleteToken implements store.Store.
func (s *Records) DeleteToken(ctx context.Context, clientID string) error {
	err := s.b.Cascade(ctx, func(tx kv.Tx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(clientID))
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeTokenRecord(clientID, v)
		if err != nil {
			return err
		}
		return deleteTokenTx(tx, clientID, rec)
	}, cascadeOf(store.PrincipalApplicationToken, clientID))
	if err != nil {
		return fmt.Errorf("delete token %q: %w", clientID, err)
	}
	return nil
}

// DeleteTokenKeepingRole implements store.Store. The witness is found in
// the index tokens_by_role (preferring a token that never expires, else
// the one expiring last) and then confirmed by reading its record in the
// same transaction. That read is what makes the guard hold across
// processes: bbolt has one writer, and an etcd transaction commits only if
// every key it read is unchanged (a compare on the record's mod revision,
// which a concurrent delete of the witness fails), whereas a walk over the
// index alone would not see an entry deleted meanwhile.
func (s *Records) DeleteTokenKeepingRole(ctx context.Context, clientID, role string, now time.Time) error {
	err := s.b.Cascade(ctx, func(tx kv.Tx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(clientID))
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeTokenRecord(clientID, v)
		if err != nil {
			return err
		}
		if t := rec.token(); slices.Contains(t.Roles, role) && !t.Expired(now) {
			if err := witnessTx(tx, role, clientID, now); err != nil {
				return err
			}
		}
		return deleteTokenTx(tx, clientID, rec)
	}, cascadeOf(store.PrincipalApplicationToken, clientID))
	if err != nil {
		return fmt.Errorf("delete token %q keeping a live holder of role %q: %w", clientID, role, err)
	}
	return nil
}

// witnessTx returns nil if a token other than except holds role and is
// live at now, confirmed by reading its record in tx; ErrLastHolder if
// there is none.
func witnessTx(tx kv.Tx, role, except string, now time.Time) error {
	tokens := tx.Bucket(bucketTokens)
	confirm := func(id []byte) (bool, error) {
		v := tokens.Get(id)
		if v == nil {
			return false, nil
		}
		t, err := decodeToken(string(id), v)
		if err != nil {
			return false, err
		}
		return slices.Contains(t.Roles, role) && !t.Expired(now), nil
	}
	prefix := roleIndexPrefix(role)
	nowNanos := expiryNanos(now)
	var latest []byte // the live holder expiring last
	var latestExp uint64
	c := tx.Bucket(bucketTokensByRole).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		id := k[len(prefix):]
		if string(id) == except || len(v) != 8 {
			continue
		}
		exp := binary.BigEndian.Uint64(v)
		if exp == 0 { // never expires: the best witness
			ok, err := confirm(id)
			if err != nil || ok {
				return err
			}
			continue
		}
		if live, err := holderLive(tokens, id, exp, nowNanos, now); err != nil {
			return err
		} else if live && exp > latestExp {
			latest, latestExp = bytes.Clone(id), exp
		}
	}
	if latest != nil {
		if ok, err := confirm(latest); err != nil || ok {
			return err
		}
	}
	return store.ErrLastHolder
}

// RecordTokenUse implements store.Store. Only the record changes; no index
// depends on LastUsed. In a backend with bounded transactions the tokens
// are written in several (chunk.go), in client-ID order: each token's use
// is written or not, and after an error the earlier ones stay written
// (use times are a best-effort record of last use, and writing one again
// changes nothing: the later time is kept).
func (s *Records) RecordTokenUse(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(lastUsed))
	written, err := s.inChunks(ctx, len(ids), s.perTxn(1), func(ctx context.Context, lo, hi int) error {
		return s.update(ctx, func(tx kv.Tx) error {
			tokens := tx.Bucket(bucketTokens)
			for _, id := range ids[lo:hi] {
				used := lastUsed[id]
				key := []byte(id)
				v := tokens.Get(key)
				if v == nil {
					continue // deleted meanwhile
				}
				rec, err := decodeTokenRecord(id, v)
				if err != nil {
					return err
				}
				if !used.After(rec.LastUsed) {
					continue
				}
				rec.LastUsed = used.UTC()
				val, err := rec.encode()
				if err != nil {
					return fmt.Errorf("token %q: %w", id, err)
				}
				if err := tokens.Put(key, val); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return chunksErr("record token use", len(ids), "tokens", written, err)
	}
	return nil
}

// DeleteExpiredTokens implements store.Store. It alternates a short read
// transaction collecting up to s.gcChunk candidates from tokens_by_expiry with
// a write transaction deleting them, so it never deletes under a live
// cursor and never holds a long transaction. Like DeleteToken, it deletes
// the auth tokens minted from each token it removes, so expiry leaves no
// orphans behind. Each candidate is re-checked
// inside the write, since the token may have been deleted (or re-created
// with another expiry) in between. On error it returns how many it had
// removed so far.
func (s *Records) DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error) {
	nowNanos := expiryNanos(now)
	total := 0
	var resume []byte
	for {
		keys, err := s.expiredCandidates(bucketTokensByExpiry, resume, nowNanos)
		if err != nil {
			return total, fmt.Errorf("delete expired tokens: %w", err)
		}
		if len(keys) == 0 {
			return total, nil
		}
		var n int
		deleteExpired := func(keys [][]byte) func(tx kv.Tx) error {
			return func(tx kv.Tx) error {
				n = 0 // the function may be re-run
				tokens := tx.Bucket(bucketTokens)
				for _, k := range keys {
					id := string(k[8:])
					v := tokens.Get([]byte(id))
					if v == nil {
						continue
					}
					rec, err := decodeTokenRecord(id, v)
					if err != nil {
						return err
					}
					if !rec.token().Expired(now) {
						continue
					}
					if err := deleteTokenTx(tx, id, rec); err != nil {
						return err
					}
					n++
				}
				return nil
			}
		}
		err = s.update(ctx, deleteExpired(keys))
		if s.b.TooLarge(err) {
			// Some token has many auth tokens: one token per transaction,
			// each a cascade of its own (Backend.Cascade).
			deleted := 0
			for _, k := range keys {
				if err = s.b.Cascade(ctx, deleteExpired([][]byte{k}), cascadeOf(store.PrincipalApplicationToken, string(k[8:]))); err != nil {
					return total + deleted, fmt.Errorf("delete expired tokens: %w", err)
				}
				deleted += n
			}
			n = deleted
		}
		if err != nil {
			return total, fmt.Errorf("delete expired tokens: %w", err)
		}
		total += n
		if len(keys) < s.gcChunk {
			return total, nil
		}
		resume = keys[len(keys)-1]
	}
}

// expiredCandidates returns up to s.gcChunk keys of an expiry index
// (tokens_by_expiry or pulsar_tokens_by_expiry: be64 expiry ‖ ID) after
// resume (from the start if nil) whose expiry is at or before nowNanos.
func (s *Records) expiredCandidates(bucket, resume []byte, nowNanos uint64) ([][]byte, error) {
	var keys [][]byte
	err := s.view(func(tx kv.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		k, _ := c.First()
		if resume != nil {
			k, _ = c.Seek(resume)
			if bytes.Equal(k, resume) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(keys) < s.gcChunk; k, _ = c.Next() {
			if len(k) <= 8 {
				return fmt.Errorf("corrupt %s key %x", bucket, k)
			}
			if binary.BigEndian.Uint64(k[:8]) > nowNanos {
				break
			}
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	return keys, err
}
