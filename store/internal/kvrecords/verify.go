package kvrecords

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// VerifyIndexes checks, in one read transaction, that every index holds
// exactly the entries its records derive (no missing and no stale ones) and
// the references this backend maintains: users hold existing roles, auth
// tokens have existing principals and Pulsar tokens existing tenants (every
// deletion path cascades). It also checks that records sit under the key
// they name, that the signing key set decodes with unique kids, and that
// every database_usage entry belongs to a database whose totals are the
// sums (LastUsage the maximum) of its months, and that every namespace_stats
// entry is a valid snapshot of an existing tenant under the key it names,
// and that every audit entry is a valid event under a Seq the bucket's
// sequence has reached. verifyAudit checks the audit bucket (its sequence is the backend's). For
// backends' tests.
func VerifyIndexes(tx kv.Tx, verifyAudit func() error) error {
	err := func() error {
		want := map[string]map[string]string{} // bucket → key → value
		add := func(bucket []byte, k, v []byte) {
			m := want[string(bucket)]
			if m == nil {
				m = map[string]string{}
				want[string(bucket)] = m
			}
			m[string(k)] = string(v)
		}
		for _, b := range [][]byte{bucketTokensByRole, bucketTokensByExpiry, bucketUsersByName,
			bucketUsersByRole, bucketAuthByPrinc, bucketAuthByUse,
			bucketPulsarByMAC, bucketPulsarByTenant, bucketPulsarByExpiry} {
			want[string(b)] = map[string]string{}
		}

		roles := tx.Bucket(bucketRoles)
		err := tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			rec, err := decodeTokenRecord(string(k), v)
			if err != nil {
				return err
			}
			if rec.ClientID != string(k) {
				return fmt.Errorf("token under key %q has client ID %q", k, rec.ClientID)
			}
			exp := expiryNanos(rec.Expiry)
			for _, r := range rec.Roles {
				add(bucketTokensByRole, roleIndexKey(r, rec.ClientID), be64(exp))
			}
			if exp != 0 {
				add(bucketTokensByExpiry, expiryIndexKey(exp, rec.ClientID), nil)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			rec, err := decodeUserRecord(v)
			if err != nil {
				return err
			}
			if rec.ID != string(k) {
				return fmt.Errorf("user under key %q has ID %q", k, rec.ID)
			}
			add(bucketUsersByName, []byte(rec.Username), k)
			for _, r := range rec.Roles {
				if roles.Get([]byte(r)) == nil {
					return fmt.Errorf("user %q holds deleted role %q", rec.ID, r)
				}
				add(bucketUsersByRole, usersByRoleKey(r, rec.ID), nil)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketAuthTokens).ForEach(func(k, v []byte) error {
			rec, err := decodeAuthTokenRecord(v)
			if err != nil {
				return err
			}
			if string(rec.MAC) != string(k) {
				return fmt.Errorf("auth token record under key %x has MAC %x", k, rec.MAC)
			}
			if isOrphan(tx, rec.PrincipalKind, rec.PrincipalID) {
				return fmt.Errorf("auth token %x of missing %s %q", k, rec.PrincipalKind, rec.PrincipalID)
			}
			add(bucketAuthByPrinc, principalKey(rec.PrincipalKind, rec.PrincipalID, k), nil)
			add(bucketAuthByUse, useIndexKey(rec.LastUsed, k), nil)
			return nil
		})
		if err != nil {
			return err
		}

		tenants := tx.Bucket(bucketTenants)
		err = tenants.ForEach(func(k, v []byte) error {
			t, err := decodeTenant(v)
			if err != nil {
				return err
			}
			if t.Name != string(k) {
				return fmt.Errorf("tenant under key %q has name %q", k, t.Name)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketPulsar).ForEach(func(k, v []byte) error {
			rec, err := decodePulsarTokenRecord(v)
			if err != nil {
				return err
			}
			if rec.ID != string(k) {
				return fmt.Errorf("Pulsar token under key %q has ID %q", k, rec.ID)
			}
			if tenants.Get([]byte(rec.Tenant)) == nil {
				return fmt.Errorf("Pulsar token %q of missing tenant %q", rec.ID, rec.Tenant)
			}
			exp := expiryNanos(rec.Expiry)
			add(bucketPulsarByMAC, rec.MAC, k)
			add(bucketPulsarByTenant, rec.tenantKey(), be64(exp))
			if exp != 0 {
				add(bucketPulsarByExpiry, expiryIndexKey(exp, rec.ID), nil)
			}
			return nil
		})
		if err != nil {
			return err
		}
		keys, err := decodeSigningKeys(tx.Bucket(bucketSigningKeys).Get(keySigningKeys))
		if err != nil {
			return err
		}
		if _, err := prepareSigningKeys(keys); err != nil {
			return fmt.Errorf("stored signing keys: %w", err)
		}
		if !slices.IsSortedFunc(keys, func(a, b store.SigningKey) int { return a.CreatedAt.Compare(b.CreatedAt) }) {
			return errors.New("stored signing keys are not oldest first")
		}
		n := 0
		if err := tx.Bucket(bucketSigningKeys).ForEach(func(_, _ []byte) error { n++; return nil }); err != nil {
			return err
		}
		if n > 1 {
			return fmt.Errorf("signing_keys holds %d keys, want at most 1", n)
		}

		if err := verifyDatabaseUsage(tx); err != nil {
			return err
		}
		if err := verifyNamespaceStats(tx); err != nil {
			return err
		}
		if err := verifyAudit(); err != nil {
			return err
		}

		var errs []error
		for _, name := range slices.Sorted(maps.Keys(want)) {
			exp := want[name]
			got := map[string]string{}
			if err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
				got[string(k)] = string(v)
				return nil
			}); err != nil {
				return err
			}
			for k, v := range got {
				if ev, ok := exp[k]; !ok {
					errs = append(errs, fmt.Errorf("%s: stale entry %x", name, k))
				} else if ev != v {
					errs = append(errs, fmt.Errorf("%s: entry %x has value %x, want %x", name, k, v, ev))
				}
			}
			for k := range exp {
				if _, ok := got[k]; !ok {
					errs = append(errs, fmt.Errorf("%s: missing entry %x", name, k))
				}
			}
		}
		return errors.Join(errs...)
	}()
	return err
}

// verifyDatabaseUsage checks the databases and database_usage buckets
// against each other.
func verifyDatabaseUsage(tx kv.Tx) error {
	sums := map[string]usageRecord{} // database ID → sum of its months
	err := tx.Bucket(bucketDatabaseUsage).ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i <= 0 || checkMonth(string(k[i+1:])) != nil {
			return fmt.Errorf("corrupt database_usage key %q", k)
		}
		id := string(k[:i])
		if tx.Bucket(bucketDatabases).Get(k[:i]) == nil {
			return fmt.Errorf("database_usage entry %q of missing database %q", k, id)
		}
		u, err := decodeUsage(v)
		if err != nil {
			return err
		}
		sums[id] = sums[id].plus(u)
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketDatabases).ForEach(func(k, v []byte) error {
		rec, err := decodeDatabaseRecord(v)
		if err != nil {
			return err
		}
		if rec.ID != string(k) {
			return fmt.Errorf("database under key %q has ID %q", k, rec.ID)
		}
		if sum := sums[rec.ID]; !sameUsage(rec.Usage, sum) {
			return fmt.Errorf("database %q has usage totals %+v, its months sum to %+v", rec.ID, rec.Usage, sum)
		}
		return nil
	})
}

// verifyNamespaceStats checks every namespace_stats entry: its key is
// tenant 0x00 namespace, its record names the same tenant and namespace and
// passes the validation of PutNamespaceStats, and its tenant exists (every
// DeleteTenant cascades).
func verifyNamespaceStats(tx kv.Tx) error {
	tenants := tx.Bucket(bucketTenants)
	return tx.Bucket(bucketNamespaceStats).ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i <= 0 || i == len(k)-1 {
			return fmt.Errorf("corrupt namespace_stats key %q", k)
		}
		rec, err := decodeNamespaceStatsRecord(v)
		if err != nil {
			return err
		}
		if !bytes.Equal(namespaceStatsKey(rec.Tenant, rec.Namespace), k) {
			return fmt.Errorf("namespace stats under key %q are of %q/%q", k, rec.Tenant, rec.Namespace)
		}
		if err := checkNamespaceStats(rec.namespaceStats()); err != nil {
			return fmt.Errorf("namespace stats %q: %w", k, err)
		}
		if tenants.Get(k[:i]) == nil {
			return fmt.Errorf("namespace stats %q of missing tenant %q", k, k[:i])
		}
		return nil
	})
}
