package kvrecords

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// Pulsar-token MACs never appear in errors or logs: they are lookup keys of
// live credentials. Errors name the token ID instead.

// preparePulsarToken validates and encodes a Pulsar token outside the write
// transaction. IssuedAt is required: it orders the tenant's tokens and is
// the instant at which the token limit counts live tokens.
func preparePulsarToken(t store.PulsarToken) (pulsarTokenRecord, []byte, error) {
	if err := checkID("Pulsar token", t.ID); err != nil {
		return pulsarTokenRecord{}, nil, err
	}
	if err := checkTenantName(t.Tenant); err != nil {
		return pulsarTokenRecord{}, nil, err
	}
	if err := checkMAC("Pulsar token", t.MAC); err != nil {
		return pulsarTokenRecord{}, nil, err
	}
	if t.IssuedAt.IsZero() {
		return pulsarTokenRecord{}, nil, errors.New("issued-at time is required")
	}
	rec := toPulsarTokenRecord(t)
	val, err := rec.encode()
	if err != nil {
		return pulsarTokenRecord{}, nil, err
	}
	return rec, val, nil
}

// tenantKey is the record's pulsar_tokens_by_tenant key. IssuedAt is within
// the storable range (encode checked it, or it was decoded), so UnixNano is
// exact; a zero IssuedAt (never written by CreatePulsarToken) maps to 0, as
// nanos stores it.
func (r pulsarTokenRecord) tenantKey() []byte {
	var n int64
	if !r.IssuedAt.IsZero() {
		n = r.IssuedAt.UnixNano()
	}
	return pulsarTenantKey(r.Tenant, n, r.ID)
}

// deletePulsarTokenTx removes a Pulsar token record and the index entries
// derived from the stored record.
func deletePulsarTokenTx(tx kv.Tx, id string, rec pulsarTokenRecord) error {
	if len(rec.MAC) > 0 {
		if err := tx.Bucket(bucketPulsarByMAC).Delete(rec.MAC); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketPulsarByTenant).Delete(rec.tenantKey()); err != nil {
		return err
	}
	if exp := expiryNanos(rec.Expiry); exp != 0 {
		if err := tx.Bucket(bucketPulsarByExpiry).Delete(expiryIndexKey(exp, id)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketPulsar).Delete([]byte(id))
}

// deletePulsarTokensOfTx removes every Pulsar token of tenant: the cascade
// of DeleteTenant. Keys are collected before deleting, as bbolt cursors
// must not see their bucket change under them.
func deletePulsarTokensOfTx(tx kv.Tx, tenant string) error {
	prefix := tenantPrefix(tenant)
	var keys [][]byte
	c := tx.Bucket(bucketPulsarByTenant).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return deletePulsarTokensByKeys(tx, prefix, keys)
}

// deletePulsarTokensByKeys removes the Pulsar tokens under keys, keys of
// pulsar_tokens_by_tenant starting with prefix, with their index entries;
// stray keys are dropped.
func deletePulsarTokensByKeys(tx kv.Tx, prefix []byte, keys [][]byte) error {
	byTenant := tx.Bucket(bucketPulsarByTenant)
	tokens := tx.Bucket(bucketPulsar)
	for _, k := range keys {
		if len(k) <= len(prefix)+8 {
			return fmt.Errorf("corrupt pulsar_tokens_by_tenant key %x", k)
		}
		id := k[len(prefix)+8:]
		v := tokens.Get(id)
		if v == nil {
			// A stray entry (damaged file) must not block deleting the
			// tenant: drop it.
			if err := byTenant.Delete(k); err != nil {
				return err
			}
			continue
		}
		rec, err := decodePulsarTokenRecord(v)
		if err != nil {
			return err
		}
		if !bytes.Equal(rec.tenantKey(), k) {
			// Stray too: the record under this ID derives another key.
			if err := byTenant.Delete(k); err != nil {
				return err
			}
			continue
		}
		if err := deletePulsarTokenTx(tx, string(id), rec); err != nil {
			return err
		}
	}
	return nil
}

// countLivePulsarTx counts the tokens of tenant live at now (not expired),
// stopping once it reaches upTo. The expiry in pulsar_tokens_by_tenant
// decides, except where it equals now after clamping (see holderLive).
func countLivePulsarTx(tx kv.Tx, tenant string, now time.Time, upTo int) (int, error) {
	prefix := tenantPrefix(tenant)
	nowNanos := expiryNanos(now)
	tokens := tx.Bucket(bucketPulsar)
	n := 0
	c := tx.Bucket(bucketPulsarByTenant).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && n < upTo; k, v = c.Next() {
		if len(k) <= len(prefix)+8 || len(v) != 8 {
			return 0, fmt.Errorf("corrupt pulsar_tokens_by_tenant entry %x", k)
		}
		exp := binary.BigEndian.Uint64(v)
		switch {
		case exp == 0 || exp > nowNanos:
			n++
		case exp == nowNanos:
			tv := tokens.Get(k[len(prefix)+8:])
			if tv == nil {
				continue
			}
			rec, err := decodePulsarTokenRecord(tv)
			if err != nil {
				return 0, err
			}
			if !rec.pulsarToken().Expired(now) {
				n++
			}
		}
	}
	return n, nil
}

// CreatePulsarToken implements store.Store. The tenant check, the live
// count and the write are one transaction on the single writer, so
// concurrent creators can never overshoot the limit together.
func (s *Records) CreatePulsarToken(ctx context.Context, t store.PulsarToken, limit int) error {
	rec, val, err := preparePulsarToken(t)
	if err != nil {
		return fmt.Errorf("create Pulsar token %q: %w", t.ID, err)
	}
	id, mac, tenant := []byte(rec.ID), rec.MAC, rec.Tenant
	tenantKey := rec.tenantKey()
	exp := expiryNanos(rec.Expiry)
	issuedAt := rec.IssuedAt
	err = s.update(ctx, func(tx kv.Tx) error {
		if tx.Bucket(bucketTenants).Get([]byte(tenant)) == nil {
			return fmt.Errorf("tenant %q: %w", tenant, store.ErrNotFound)
		}
		tokens := tx.Bucket(bucketPulsar)
		if tokens.Get(id) != nil {
			return fmt.Errorf("token ID: %w", store.ErrAlreadyExists)
		}
		byMAC := tx.Bucket(bucketPulsarByMAC)
		if byMAC.Get(mac) != nil {
			return fmt.Errorf("token MAC: %w", store.ErrAlreadyExists)
		}
		if limit > 0 {
			n, err := countLivePulsarTx(tx, tenant, issuedAt, limit)
			if err != nil {
				return err
			}
			if n >= limit {
				return fmt.Errorf("tenant %q already holds %d live tokens (limit %d): %w", tenant, n, limit, store.ErrLimitReached)
			}
		}
		if err := tokens.Put(id, val); err != nil {
			return err
		}
		if err := byMAC.Put(mac, id); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPulsarByTenant).Put(tenantKey, be64(exp)); err != nil {
			return err
		}
		if exp != 0 {
			return tx.Bucket(bucketPulsarByExpiry).Put(expiryIndexKey(exp, rec.ID), []byte{})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create Pulsar token %q: %w", t.ID, err)
	}
	return nil
}

// GetPulsarToken implements store.Store.
func (s *Records) GetPulsarToken(ctx context.Context, id string) (store.PulsarToken, error) {
	return getOne(s, bucketPulsar, id, "Pulsar token", func(v []byte) (store.PulsarToken, error) {
		rec, err := decodePulsarTokenRecord(v)
		return rec.pulsarToken(), err
	})
}

// GetPulsarTokenByMAC implements store.Store. It is on the check path of
// Pulsar tokens without an ID claim: one read transaction, two lookups,
// one decode.
func (s *Records) GetPulsarTokenByMAC(ctx context.Context, mac []byte) (store.PulsarToken, error) {
	var t store.PulsarToken
	err := s.view(func(tx kv.Tx) error {
		if len(mac) == 0 {
			return store.ErrNotFound // bbolt has no empty keys
		}
		id := tx.Bucket(bucketPulsarByMAC).Get(mac)
		if id == nil {
			return store.ErrNotFound
		}
		v := tx.Bucket(bucketPulsar).Get(id)
		if v == nil {
			return fmt.Errorf("corrupt pulsar_tokens_by_mac: no token %q", id)
		}
		rec, err := decodePulsarTokenRecord(v)
		t = rec.pulsarToken()
		return err
	})
	if err != nil {
		return store.PulsarToken{}, fmt.Errorf("get Pulsar token by MAC: %w", err)
	}
	return t, nil
}

// ListPulsarTokens implements store.Store. pulsar_tokens_by_tenant gives
// the order (IssuedAt, then ID). A tenant's tokens are bounded by its
// token limit, so one read transaction stays short; a name that is no
// valid tenant name has none.
func (s *Records) ListPulsarTokens(ctx context.Context, tenant string) ([]store.PulsarToken, error) {
	var list []store.PulsarToken
	err := s.view(func(tx kv.Tx) error {
		if checkTenantName(tenant) != nil {
			return nil // its prefix could match another tenant's keys
		}
		prefix := tenantPrefix(tenant)
		tokens := tx.Bucket(bucketPulsar)
		c := tx.Bucket(bucketPulsarByTenant).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) <= len(prefix)+8 {
				return fmt.Errorf("corrupt pulsar_tokens_by_tenant key %x", k)
			}
			id := k[len(prefix)+8:]
			v := tokens.Get(id)
			if v == nil {
				return fmt.Errorf("corrupt pulsar_tokens_by_tenant: no token %q", id)
			}
			rec, err := decodePulsarTokenRecord(v)
			if err != nil {
				return err
			}
			list = append(list, rec.pulsarToken())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list Pulsar tokens of tenant %q: %w", tenant, err)
	}
	return list, nil
}

// DeletePulsarToken implements store.Store.
func (s *Records) DeletePulsarToken(ctx context.Context, id string) error {
	key := []byte(id)
	err := s.update(ctx, func(tx kv.Tx) error {
		v := tx.Bucket(bucketPulsar).Get(key)
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodePulsarTokenRecord(v)
		if err != nil {
			return err
		}
		return deletePulsarTokenTx(tx, id, rec)
	})
	if err != nil {
		return fmt.Errorf("delete Pulsar token %q: %w", id, err)
	}
	return nil
}

// DeleteExpiredPulsarTokens implements store.Store, as DeleteExpiredTokens
// does: short read transactions collect up to s.gcChunk candidates from
// pulsar_tokens_by_expiry, and a write transaction per chunk re-checks
// each against its stored record (it may have been deleted, or re-created
// with another expiry, in between) and deletes it. On error it returns how
// many it had removed so far.
func (s *Records) DeleteExpiredPulsarTokens(ctx context.Context, now time.Time) (int, error) {
	nowNanos := expiryNanos(now)
	total := 0
	var resume []byte
	for {
		keys, err := s.expiredCandidates(bucketPulsarByExpiry, resume, nowNanos)
		if err != nil {
			return total, fmt.Errorf("delete expired Pulsar tokens: %w", err)
		}
		if len(keys) == 0 {
			return total, nil
		}
		var n int
		err = s.update(ctx, func(tx kv.Tx) error {
			n = 0 // the function may be re-run
			tokens := tx.Bucket(bucketPulsar)
			for _, k := range keys {
				id := string(k[8:])
				v := tokens.Get([]byte(id))
				if v == nil {
					continue
				}
				rec, err := decodePulsarTokenRecord(v)
				if err != nil {
					return err
				}
				if !rec.pulsarToken().Expired(now) {
					continue
				}
				if err := deletePulsarTokenTx(tx, id, rec); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("delete expired Pulsar tokens: %w", err)
		}
		total += n
		if len(keys) < s.gcChunk {
			return total, nil
		}
		resume = keys[len(keys)-1]
	}
}
