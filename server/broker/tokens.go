package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

const (
	maxTokenRoles      = 50
	maxDescriptionLen  = 1024
	maxCreateRetries   = 3
	tokensListPageSize = 500
)

// CreateTokenInput is what a caller asks for.
type CreateTokenInput struct {
	Roles       []string
	Description string
	Expiry      time.Time // zero: never
	OrgID       string    // optional; must be this broker's org
}

// IssuedToken is a created token with its one-time secret and bearer value.
type IssuedToken struct {
	store.Token
	Secret string
	Bearer string
}

// CreateToken issues an application token bound to roles the caller may
// grant. Nothing is written unless every check passes.
func (b *Broker) CreateToken(ctx context.Context, caller *Principal, in CreateTokenInput) (IssuedToken, error) {
	now := b.now()
	if in.OrgID != "" && in.OrgID != b.org.ID {
		return IssuedToken{}, Denied("no access to organization %q", in.OrgID)
	}
	if err := b.validateRoleList(caller, in.Roles); err != nil {
		return IssuedToken{}, err
	}
	if err := validateDescription("description", in.Description); err != nil {
		return IssuedToken{}, err
	}
	if !in.Expiry.IsZero() && !in.Expiry.After(now) {
		return IssuedToken{}, Invalid("tokenExpiry: %s is not in the future", in.Expiry.UTC().Format(time.RFC3339))
	}
	expiry, err := b.applyTokenPolicy(now, in.Expiry)
	if err != nil {
		return IssuedToken{}, err
	}

	for attempt := 0; ; attempt++ {
		cred, err := credential.New()
		if err != nil {
			return IssuedToken{}, fmt.Errorf("generate credential: %w", err)
		}
		t := store.Token{
			ClientID:    cred.ClientID,
			OrgID:       b.org.ID,
			Roles:       append([]string(nil), in.Roles...),
			Description: in.Description,
			SecretMAC:   b.mac.Sum(cred.Token),
			GeneratedOn: now.UTC(),
			CreatedBy:   caller.ID,
		}
		if !expiry.IsZero() {
			t.Expiry = expiry.UTC()
		}
		auditTarget(ctx, "token", t.ClientID)
		err = b.st.CreateToken(ctx, t)
		switch {
		case err == nil:
			// Debug, not Info: creates run at machine rates (services mint
			// tokens), a log line each cost about a twentieth of a create's
			// CPU, and the audit event committed with the token is the
			// durable record of every create (docs/audit.md). Checked
			// first: the arguments alone would allocate.
			if b.log.Enabled(ctx, slog.LevelDebug) {
				b.log.DebugContext(ctx, "application token created", "client_id", t.ClientID, "roles", t.Roles, "by", caller.ID)
			}
			return IssuedToken{Token: t, Secret: cred.Secret, Bearer: cred.Token}, nil
		case errors.Is(err, store.ErrAlreadyExists) && attempt < maxCreateRetries:
			continue // a 137-bit client ID collided: astronomically rare, but retry
		case errors.Is(err, store.ErrNotFound):
			// A role was deleted between our check and the write.
			return IssuedToken{}, Invalid("roles: %v", err)
		default:
			return IssuedToken{}, fmt.Errorf("create token: %w", err)
		}
	}
}

// ListTokens returns every token (without secrets), with last-use times
// merged from memory so they are current.
func (b *Broker) ListTokens(ctx context.Context) ([]store.Token, error) {
	var out []store.Token
	after := ""
	for {
		page, next, err := b.st.ListTokens(ctx, after, tokensListPageSize)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		for _, t := range page {
			if mem := b.view.TokenUse.LastUsed(t.ClientID); mem.After(t.LastUsed) {
				t.LastUsed = mem
			}
			out = append(out, t)
		}
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// MaxTokenPageSize bounds one page of ListTokensPage.
const MaxTokenPageSize = 1000

// ListTokensPage returns up to limit tokens that f selects, with client IDs
// greater than after, in client ID order, and the client ID to continue
// after ("" when there are no more). It reads one bounded page of the store
// whatever the number of tokens, so listing every token page by page costs
// time proportional to the count, and memory to one page. A page may hold
// fewer than limit tokens (even none) while more follow.
func (b *Broker) ListTokensPage(ctx context.Context, f TokenFilter, after string, limit int) ([]store.Token, string, error) {
	match, err := b.tokenMatcher(f, b.now())
	if err != nil {
		return nil, "", err
	}
	limit = min(max(limit, 1), MaxTokenPageSize)
	page, next, err := b.st.ListTokens(ctx, after, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	out := page[:0]
	for _, t := range page {
		if mem := b.view.TokenUse.LastUsed(t.ClientID); mem.After(t.LastUsed) {
			t.LastUsed = mem
		}
		if match(t) {
			out = append(out, t)
		}
	}
	return out, next, nil
}

// DeleteToken revokes a token. A caller may delete its own token, or one
// whose roles it could grant: otherwise a Database Administrator could lock
// the Organization Administrator out.
func (b *Broker) DeleteToken(ctx context.Context, caller *Principal, clientID string) error {
	if !credential.ValidClientID(clientID) {
		return Invalid("clientId: must be %d ASCII letters", credential.ClientIDLen)
	}
	t, err := b.st.GetToken(ctx, clientID)
	if b.caughtUp(ctx, err) {
		t, err = b.st.GetToken(ctx, clientID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return NotFound("token with clientId %q not found", clientID)
	}
	if err != nil {
		return fmt.Errorf("get token: %w", err)
	}
	if caller.ID != clientID {
		if err := b.mayManage(caller, "a token", t.Roles); err != nil {
			return err
		}
	}
	auditTarget(ctx, "token", clientID)
	if err := b.deleteToken(ctx, t); err != nil {
		var be *Error
		switch {
		case errors.As(err, &be):
			return be
		case errors.Is(err, store.ErrNotFound):
			return NotFound("token with clientId %q not found", clientID)
		}
		return fmt.Errorf("delete token: %w", err)
	}
	b.log.InfoContext(ctx, "application token deleted", "client_id", clientID, "by", caller.ID)
	return nil
}

// mayGrant enforces the no-escalation rule: the caller must hold every
// permission of the role.
func (b *Broker) mayGrant(caller *Principal, role store.Role) error {
	if caller == nil || caller.perms == nil {
		return Denied("cannot grant role %q", role.Name)
	}
	if action, resource, ok := caller.perms.Covers(role); !ok {
		return Denied("cannot grant role %q: caller lacks %q on %q", role.Name, action, resource)
	}
	return nil
}

// mayGrantStored is mayGrant for a role the view holds, checked against
// the role's compiled permissions (the view's set for that role alone, the
// one a token holding only it uses) instead of compiling its patterns on
// every call: this check runs on every create. The set is looked up after
// the role: if the role changed in between, the check uses either version,
// as it would have a moment earlier or later; if it was deleted, the set
// grants nothing (covered) and the write fails on the missing role, and a
// role anyone holds cannot be deleted.
func (b *Broker) mayGrantStored(caller *Principal, role store.Role) error {
	if caller == nil || caller.perms == nil {
		return Denied("cannot grant role %q", role.Name)
	}
	if action, resource, ok := caller.perms.CoversSet(b.view.Permissions([]string{role.ID})); !ok {
		return Denied("cannot grant role %q: caller lacks %q on %q", role.Name, action, resource)
	}
	return nil
}

func validateDescription(field, s string) error {
	if len(s) > maxDescriptionLen {
		return Invalid("%s: at most %d bytes", field, maxDescriptionLen)
	}
	return validateText(field, s, maxDescriptionLen)
}

// validateText applies the one rule for free-text fields (policy.ValidateText).
func validateText(field, s string, maxChars int) error {
	if err := policy.ValidateText(field, s, maxChars); err != nil {
		return Invalid("%v", err)
	}
	return nil
}
