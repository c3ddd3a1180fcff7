package broker

import (
	"context"
	"fmt"

	"github.com/tokenbroker/tokenbroker/store"
)

// MaxListPageSize bounds one page of every ...Page read below.
const MaxListPageSize = 1000

// pageLimit is limit within 1..MaxListPageSize.
func pageLimit(limit int) int { return min(max(limit, 1), MaxListPageSize) }

// ListRolesPage returns up to limit roles (default and custom) with IDs
// after after, in ID order, and the ID to continue after ("" when there are
// no more). Pages are read from the store, not from the view's role cache:
// the cache holds no order to page by, and a store read fails closed while
// a shared store's view is stale, as every other list does.
func (b *Broker) ListRolesPage(ctx context.Context, after string, limit int) ([]store.Role, string, error) {
	roles, next, err := b.st.ListRolesPage(ctx, after, pageLimit(limit))
	if err != nil {
		return nil, "", fmt.Errorf("list roles: %w", err)
	}
	return roles, next, nil
}

// ListTenantsPage returns up to limit tenants with names after after, in
// name order, and the name to continue after ("" when there are no more).
func (b *Broker) ListTenantsPage(ctx context.Context, after string, limit int) ([]store.Tenant, string, error) {
	ts, next, err := b.st.ListTenantsPage(ctx, after, pageLimit(limit))
	if err != nil {
		return nil, "", fmt.Errorf("list tenants: %w", err)
	}
	return ts, next, nil
}

// ListUsersPage returns up to limit users (1..MaxListPageSize) with
// usernames after after, in username order, and the username to continue
// after ("" when there are no more). One bounded store read, whatever the
// number of users.
func (b *Broker) ListUsersPage(ctx context.Context, after string, limit int) ([]store.User, string, error) {
	users, next, err := b.st.ListUsersPage(ctx, after, pageLimit(limit))
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	return users, next, nil
}

// ListPulsarTokensPage returns up to limit tokens (1..MaxListPageSize) of a
// tenant after the position after, in (IssuedAt, ID) order, and the
// position to continue after (zero when there are no more). The tenant
// must exist (and belong to cluster, when given), as for ListPulsarTokens.
func (b *Broker) ListPulsarTokensPage(ctx context.Context, tenant, cluster string, after store.PulsarTokenPosition, limit int) ([]store.PulsarToken, store.PulsarTokenPosition, error) {
	if _, err := b.GetTenant(ctx, tenant, cluster); err != nil {
		return nil, store.PulsarTokenPosition{}, err
	}
	toks, next, err := b.st.ListPulsarTokensPage(ctx, tenant, after, pageLimit(limit))
	if err != nil {
		return nil, store.PulsarTokenPosition{}, fmt.Errorf("list pulsar tokens: %w", err)
	}
	return toks, next, nil
}
