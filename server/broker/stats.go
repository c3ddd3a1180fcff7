package broker

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

const maxStatsPerReport = 1000

var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// ReportNamespaceStats stores the latest statistics a data-plane service
// reports; each report replaces the namespace's previous one.
func (b *Broker) ReportNamespaceStats(ctx context.Context, caller *Principal, stats []store.NamespaceStats) error {
	if len(stats) == 0 || len(stats) > maxStatsPerReport {
		return Invalid("stats: 1 to %d entries", maxStatsPerReport)
	}
	now := b.now().UTC()
	for i := range stats {
		s := &stats[i]
		if !tenantNameRE.MatchString(s.Tenant) || !namespaceRE.MatchString(s.Namespace) {
			return Invalid("stats[%d]: tenant and namespace must be 1 to 64 / 128 characters of letters, digits, '_', '.' and '-'", i)
		}
		for _, v := range []int64{s.MessagesIn, s.MessagesOut, s.BytesIn, s.BytesOut, s.Subscriptions, s.Producers,
			s.Consumers, s.SubscriptionDelayed, s.StorageSize, s.BacklogBytes, s.BacklogMessages} {
			if v < 0 {
				return Invalid("stats[%d]: counters must not be negative", i)
			}
		}
		for _, v := range []float64{s.MsgRateIn, s.MsgRateOut, s.ThroughputIn, s.ThroughputOut} {
			if v < 0 || v != v { // negative or NaN
				return Invalid("stats[%d]: rates must be non-negative numbers", i)
			}
		}
		s.UpdatedAt = now
	}
	switch err := b.st.PutNamespaceStats(ctx, stats); {
	case errors.Is(err, store.ErrNotFound):
		return NotFound("%v", err)
	case err != nil:
		return fmt.Errorf("store namespace stats: %w", err)
	}
	b.log.DebugContext(ctx, "namespace stats reported", "entries", len(stats), "by", caller.ID)
	return nil
}

// NamespaceStats returns a tenant's namespace statistics to a caller
// presenting cred: an application or auth token whose roles allow
// org-billing-read on the organization or org-stream-manage on the
// tenant, or one of the tenant's own Pulsar tokens (as Astra's SDK sends).
// One page: up to limit namespaces (1..MaxListPageSize) after the
// namespace after, in namespace order, and the namespace to continue after
// ("" when there are no more). With namespace set, only that namespace's
// statistics (404 when none were reported for it), and no next page.
func (b *Broker) NamespaceStats(ctx context.Context, cred, tenant, namespace, after string, limit int) ([]store.NamespaceStats, string, error) {
	if namespace != "" && !namespaceRE.MatchString(namespace) {
		return nil, "", Invalid("namespace: 1 to 128 characters of letters, digits, '_', '.' and '-'")
	}
	tenantDRN := policy.StreamDRN(b.org.ID, tenant)
	if isJWTShape(cred) {
		res, err := b.checkPulsarJWT(ctx, cred, tenantDRN)
		switch {
		case err != nil:
			return nil, "", err
		case res.Reason == CheckReasonCredentialInvalid:
			return nil, "", Unauthenticated(ReasonUnknownToken, "invalid or expired Pulsar token")
		case !res.Allowed:
			return nil, "", Denied("this Pulsar token belongs to another tenant")
		}
	} else {
		p, err := b.Authenticate(ctx, cred)
		if err != nil {
			return nil, "", err
		}
		if !p.Allows("org-billing-read", policy.OrgDRN(b.org.ID)) && !p.Allows("org-stream-manage", tenantDRN) {
			return nil, "", Denied("token lacks %q on %q and %q on %q", "org-billing-read", policy.OrgDRN(b.org.ID), "org-stream-manage", tenantDRN)
		}
	}
	if _, err := b.GetTenant(ctx, tenant, ""); err != nil {
		return nil, "", err
	}
	if namespace != "" {
		// The one namespace is the first after the greatest key below it.
		stats, _, err := b.st.ListNamespaceStatsPage(ctx, tenant, justBefore(namespace), 1)
		if err != nil {
			return nil, "", fmt.Errorf("list namespace stats: %w", err)
		}
		if len(stats) == 0 || stats[0].Namespace != namespace {
			return nil, "", NotFound("no statistics for namespace %q of tenant %q", namespace, tenant)
		}
		return stats, "", nil
	}
	stats, next, err := b.st.ListNamespaceStatsPage(ctx, tenant, after, pageLimit(limit))
	if err != nil {
		return nil, "", fmt.Errorf("list namespace stats: %w", err)
	}
	return stats, next, nil
}

// justBefore returns a cursor that the valid namespace name ns is the first
// name after, in bytewise order: ns with its last byte decremented and 0xff
// appended. Only names that start with that prefix lie between the two,
// and a name holding 0xff is no namespace name (namespaceRE).
func justBefore(ns string) string {
	return ns[:len(ns)-1] + string([]byte{ns[len(ns)-1] - 1, 0xff})
}
