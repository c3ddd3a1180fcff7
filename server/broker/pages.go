package broker

import (
	"context"
	"fmt"

	"github.com/tokenbroker/tokenbroker/store"
)

// MaxListPageSize bounds one page of ListUsersPage and ListPulsarTokensPage.
const MaxListPageSize = 1000

// ListUsersPage returns up to limit users (1..MaxListPageSize) with
// usernames after after, in username order, and the username to continue
// after ("" when there are no more). One bounded store read, whatever the
// number of users.
func (b *Broker) ListUsersPage(ctx context.Context, after string, limit int) ([]store.User, string, error) {
	users, next, err := b.st.ListUsersPage(ctx, after, min(max(limit, 1), MaxListPageSize))
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
	toks, next, err := b.st.ListPulsarTokensPage(ctx, tenant, after, min(max(limit, 1), MaxListPageSize))
	if err != nil {
		return nil, store.PulsarTokenPosition{}, fmt.Errorf("list pulsar tokens: %w", err)
	}
	return toks, next, nil
}
