package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/password"
	"github.com/tokenbroker/tokenbroker/store"
)

const maxUsernameLen = 64

// validateUsername: 1..64 characters of [A-Za-z0-9._@-], and not shaped
// like an application token's client ID (24 letters), so that a login name
// always means one thing.
func validateUsername(name string) error {
	if name == "" || len(name) > maxUsernameLen {
		return Invalid("username: must be 1 to %d characters", maxUsernameLen)
	}
	for i, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-'
		if !ok {
			return Invalid("username: character %d (%q) is not allowed; use letters, digits and . _ @ -", i+1, rune(c))
		}
	}
	if credential.ValidClientID(name) {
		return Invalid("username: 24 letters is the shape of an application token's clientId; choose another name")
	}
	return nil
}

// validateRoleList checks a list of role IDs to bind to a principal: 1..50
// distinct existing roles that the caller may grant.
func (b *Broker) validateRoleList(caller *Principal, roles []string) error {
	if len(roles) == 0 {
		return Invalid("roles: at least one role id is required")
	}
	if len(roles) > maxTokenRoles {
		return Invalid("roles: at most %d roles", maxTokenRoles)
	}
	for i, id := range roles {
		if slices.Contains(roles[:i], id) { // at most 50: no map to allocate
			return Invalid("roles[%d]: duplicate role id %q", i, id)
		}
		role, ok := b.view.Role(id)
		if !ok {
			return Invalid("roles[%d]: unknown role id %q", i, id)
		}
		if err := b.mayGrantStored(caller, role); err != nil {
			return err
		}
	}
	return nil
}

// mayManage enforces, for deleting or changing another principal, the same
// rule as for granting: the caller must be able to grant every role it holds.
func (b *Broker) mayManage(caller *Principal, what string, roles []string) error {
	for _, id := range roles {
		if role, ok := b.view.Role(id); ok {
			if err := b.mayGrantStored(caller, role); err != nil {
				return Denied("cannot change %s holding role %q: %s", what, role.Name, err.(*Error).Msg)
			}
		}
	}
	return nil
}

// CreateUser creates a database user.
func (b *Broker) CreateUser(ctx context.Context, caller *Principal, username, pw string, roles []string) (store.User, error) {
	if err := validateUsername(username); err != nil {
		return store.User{}, err
	}
	if err := password.ValidatePassword(pw); err != nil {
		return store.User{}, Invalid("password: %v", err)
	}
	if err := b.validateRoleList(caller, roles); err != nil {
		return store.User{}, err
	}
	hash, err := b.passwords.Hash(ctx, pw)
	if err != nil {
		return store.User{}, fmt.Errorf("hash password: %w", err)
	}
	now := b.now().UTC()
	u := store.User{
		ID: uuid.NewString(), OrgID: b.org.ID, Username: username, PasswordHash: hash,
		Roles: slices.Clone(roles), CreatedAt: now, UpdatedAt: now, CreatedBy: caller.ID,
	}
	auditTarget(ctx, "user", u.ID)
	switch err := b.st.CreateUser(ctx, u); {
	case errors.Is(err, store.ErrAlreadyExists):
		return store.User{}, &Error{Kind: KindAlreadyExists, Msg: fmt.Sprintf("username %q is taken", username)}
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, Invalid("roles: %v", err)
	case err != nil:
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	b.log.InfoContext(ctx, "user created", "user_id", u.ID, "username", username, "roles", roles, "by", caller.ID)
	return u, nil
}

// GetUser returns one user.
func (b *Broker) GetUser(ctx context.Context, id string) (store.User, error) {
	if err := validateUserID(id); err != nil {
		return store.User{}, err
	}
	u, err := b.st.GetUser(ctx, id)
	if b.caughtUp(ctx, err) {
		u, err = b.st.GetUser(ctx, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, NotFound("user %q not found", id)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// DeleteUser deletes a user; every auth token it holds stops working at once.
func (b *Broker) DeleteUser(ctx context.Context, caller *Principal, id string) error {
	u, err := b.GetUser(ctx, id)
	if err != nil {
		return err
	}
	if err := b.mayManage(caller, "a user", u.Roles); err != nil {
		return err
	}
	auditTarget(ctx, "user", id)
	if err := b.st.DeleteUser(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return NotFound("user %q not found", id)
		}
		return fmt.Errorf("delete user: %w", err)
	}
	b.log.InfoContext(ctx, "user deleted", "user_id", id, "by", caller.ID)
	return nil
}

// ResetUserPassword sets a user's password. Auth tokens already issued
// stay valid (revoke them by deleting the user if the password leaked).
func (b *Broker) ResetUserPassword(ctx context.Context, caller *Principal, id, pw string) error {
	if err := validateUserID(id); err != nil {
		return err
	}
	if err := password.ValidatePassword(pw); err != nil {
		return Invalid("password: %v", err)
	}
	u, err := b.GetUser(ctx, id)
	if err != nil {
		return err
	}
	if err := b.mayManage(caller, "a user", u.Roles); err != nil {
		return err
	}
	hash, err := b.passwords.Hash(ctx, pw) // slow: outside the store's write path
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	now := b.now().UTC()
	auditTarget(ctx, "user", id)
	_, err = b.st.UpdateUser(ctx, id, func(u store.User) (store.User, error) {
		u.PasswordHash, u.UpdatedAt = hash, now
		return u, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return NotFound("user %q not found", id)
	}
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	b.log.InfoContext(ctx, "user password reset", "user_id", id, "by", caller.ID)
	return nil
}

// RoleName returns a role's name ("" if unknown), for display.
func (b *Broker) RoleName(id string) string {
	r, _ := b.view.Role(id)
	return r.Name
}

func validateUserID(id string) error { return validateUUID("userID", id) }
