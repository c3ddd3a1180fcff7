package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// RecoverCommand is how an operator gets back in without any live
// Organization Administrator token (offline, against the data file).
const RecoverCommand = "tokenbroker admin recover --data PATH"

// refuseLastOrgAdmin fails with KindFailedPrecondition (409) when deleting
// t would leave no live token with the Organization Administrator role:
// nobody could then manage the organization over the API. The caller holds
// b.orgAdminDeletes across this check and the delete, so two concurrent
// deletes cannot each see the other's token and remove both. (Tokens only
// ever gain that role at creation, so creations need not take the lock.)
func (b *Broker) refuseLastOrgAdmin(ctx context.Context, t store.Token) error {
	now := b.now()
	if t.Expired(now) { // deleting it removes no live one
		return nil
	}
	after := ""
	for {
		page, next, err := b.st.ListTokens(ctx, after, tokensListPageSize)
		if err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		for _, o := range page {
			if o.ClientID != t.ClientID && !o.Expired(now) && isOrgAdmin(o) {
				return nil
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	return &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf(
		"token %q is the last live Organization Administrator token; deleting it would lock everyone out of managing the organization. "+
			"Create another Organization Administrator token first. (Without any, stop the broker and run: %s)", t.ClientID, RecoverCommand)}
}

func isOrgAdmin(t store.Token) bool {
	return slices.Contains(t.Roles, policy.OrganizationAdministratorID)
}
