package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// RecoverCommand is how an operator gets back in without any live
// Organization Administrator token (offline, against the data file).
const RecoverCommand = "tokenbroker admin recover --data PATH"

// deleteToken deletes t. Deleting a token with the Organization
// Administrator role is refused with KindFailedPrecondition (409) when it
// would leave no live token with that role: nobody could then manage the
// organization over the API. The check is the store's, inside the delete's
// own transaction (store.DeleteTokenKeepingRole), so it holds between
// concurrent deletes on one broker and on several brokers sharing the
// store alike: of two deletes of the last two such tokens, one is refused.
// (Tokens only ever gain that role at creation, so other tokens are deleted
// unguarded.)
func (b *Broker) deleteToken(ctx context.Context, t store.Token) error {
	if !isOrgAdmin(t) {
		return b.st.DeleteToken(ctx, t.ClientID)
	}
	err := b.st.DeleteTokenKeepingRole(ctx, t.ClientID, policy.OrganizationAdministratorID, b.now())
	if errors.Is(err, store.ErrLastHolder) {
		return lastOrgAdmin(t.ClientID)
	}
	return err
}

func lastOrgAdmin(clientID string) error {
	return &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf(
		"token %q is the last live Organization Administrator token; deleting it would lock everyone out of managing the organization. "+
			"Create another Organization Administrator token first. (Without any, stop the broker and run: %s)", clientID, RecoverCommand)}
}

// refuseRevokingEveryOrgAdmin fails with KindFailedPrecondition before a
// bulk revocation deletes anything if it would revoke every live
// Organization Administrator token. It only spares the caller a half-done
// revocation: the guard that holds under concurrent deletes is
// deleteToken's, which refuses the last one if another delete races this
// check.
func (b *Broker) refuseRevokingEveryOrgAdmin(ctx context.Context, revoke []store.Token) error {
	now := b.now()
	live := 0
	set := make(map[string]bool, len(revoke))
	for _, t := range revoke {
		set[t.ClientID] = true
		if !t.Expired(now) && isOrgAdmin(t) {
			live++
		}
	}
	if live == 0 {
		return nil
	}
	after := ""
	for {
		page, next, err := b.st.ListTokens(ctx, after, tokensListPageSize)
		if err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		for _, o := range page {
			if !set[o.ClientID] && !o.Expired(now) && isOrgAdmin(o) {
				return nil
			}
		}
		if next == "" {
			return &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf(
				"the revocation would delete every live Organization Administrator token (%d), locking everyone out of managing the organization; nothing was revoked. "+
					"Create another Organization Administrator token first, or delete these one by one.", live)}
		}
		after = next
	}
}

func isOrgAdmin(t store.Token) bool {
	return slices.Contains(t.Roles, policy.OrganizationAdministratorID)
}
