package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// RoleSpec is the writable part of a custom role.
type RoleSpec struct {
	Name        string
	Description string
	Resources   []string
	Actions     []string
	Effect      string
}

func (s RoleSpec) validate() error {
	if err := policy.ValidateRoleSpec(s.Name, s.Description, s.Resources, s.Actions, s.Effect); err != nil {
		return &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	return nil
}

// GetRole returns one role.
func (b *Broker) GetRole(ctx context.Context, id string) (store.Role, error) {
	if err := validateRoleID(id); err != nil {
		return store.Role{}, err
	}
	r, err := b.st.GetRole(ctx, id)
	if b.caughtUp(ctx, err) {
		r, err = b.st.GetRole(ctx, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Role{}, NotFound("role %q not found", id)
	}
	if err != nil {
		return store.Role{}, fmt.Errorf("get role: %w", err)
	}
	return r, nil
}

// CreateRole creates a custom role. Role names are unique (case-insensitive);
// a caller may only create a role whose permissions it holds itself.
func (b *Broker) CreateRole(ctx context.Context, caller *Principal, spec RoleSpec) (store.Role, error) {
	if err := spec.validate(); err != nil {
		return store.Role{}, err
	}
	r := store.Role{
		ID: uuid.NewString(), OrgID: b.org.ID,
		Name: spec.Name, Description: spec.Description,
		Resources: slices.Clone(spec.Resources), Actions: slices.Clone(spec.Actions), Effect: spec.Effect,
		UpdatedAt: b.now().UTC(), UpdatedBy: caller.ID,
	}
	if err := b.mayGrant(caller, r); err != nil {
		return store.Role{}, err
	}
	// Role writes are rare; serializing them makes the name-uniqueness check
	// race-free within this process. (The view has the role once the write
	// returns.)
	b.roleWrites.Lock()
	defer b.roleWrites.Unlock()
	if err := b.checkNameFree(spec.Name, ""); err != nil {
		return store.Role{}, err
	}
	auditTarget(ctx, "role", r.ID)
	if err := b.st.CreateRole(ctx, r); err != nil {
		return store.Role{}, fmt.Errorf("create role: %w", err)
	}
	b.log.InfoContext(ctx, "role created", "role_id", r.ID, "name", r.Name, "by", caller.ID)
	return r, nil
}

// UpdateRole replaces a custom role's name and policy. Tokens holding it get
// the new permissions from their next call.
func (b *Broker) UpdateRole(ctx context.Context, caller *Principal, id string, spec RoleSpec) (store.Role, error) {
	if err := validateRoleID(id); err != nil {
		return store.Role{}, err
	}
	// A default role is never changeable, whoever asks: 400 before any
	// other check (so never a 403 about the new policy).
	if policy.IsDefaultRoleID(id) {
		r, _ := b.view.Role(id)
		return store.Role{}, errDefaultRole(r)
	}
	if err := spec.validate(); err != nil {
		return store.Role{}, err
	}
	probe := store.Role{Name: spec.Name, Resources: spec.Resources, Actions: spec.Actions, Effect: spec.Effect}
	if err := b.mayGrant(caller, probe); err != nil {
		return store.Role{}, err
	}
	b.roleWrites.Lock()
	defer b.roleWrites.Unlock()
	if err := b.checkNameFree(spec.Name, id); err != nil {
		return store.Role{}, err
	}
	now := b.now().UTC()
	auditTarget(ctx, "role", id)
	updated, err := b.st.UpdateRole(ctx, id, func(r store.Role) (store.Role, error) {
		if r.Builtin {
			return r, errDefaultRole(r)
		}
		// Changing a role also takes permissions away from its holders, so
		// the caller must hold everything the role grants today as well:
		// otherwise a role writer could strip an administrator's role.
		if err := b.mayGrant(caller, r); err != nil {
			return r, err
		}
		r.Name, r.Description = spec.Name, spec.Description
		r.Resources, r.Actions, r.Effect = slices.Clone(spec.Resources), slices.Clone(spec.Actions), spec.Effect
		r.UpdatedAt, r.UpdatedBy = now, caller.ID
		return r, nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Role{}, NotFound("role %q not found", id)
	case KindOf(err) != 0:
		return store.Role{}, err
	case err != nil:
		return store.Role{}, fmt.Errorf("update role: %w", err)
	}
	b.log.InfoContext(ctx, "role updated", "role_id", id, "by", caller.ID)
	return updated, nil
}

// DeleteRole deletes a custom role no live token holds.
func (b *Broker) DeleteRole(ctx context.Context, caller *Principal, id string) error {
	if err := validateRoleID(id); err != nil {
		return err
	}
	if policy.IsDefaultRoleID(id) {
		r, _ := b.view.Role(id)
		return errDefaultRole(r)
	}
	b.roleWrites.Lock()
	defer b.roleWrites.Unlock()
	auditTarget(ctx, "role", id)
	err := b.st.DeleteRole(ctx, id, b.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return NotFound("role %q not found", id)
	case errors.Is(err, store.ErrInUse):
		return &Error{Kind: KindFailedPrecondition, Msg: fmt.Sprintf("role %q is held by at least one user or live token; delete those first", id)}
	case err != nil:
		return fmt.Errorf("delete role: %w", err)
	}
	b.log.InfoContext(ctx, "role deleted", "role_id", id, "by", caller.ID)
	return nil
}

// checkNameFree fails if another role (not except) has the name, ignoring case.
// Callers hold roleWrites.
func (b *Broker) checkNameFree(name, except string) error {
	var taken *store.Role
	b.view.EachRole(func(r store.Role) bool {
		if r.ID != except && strings.EqualFold(r.Name, name) {
			taken = &r
			return false
		}
		return true
	})
	if taken != nil {
		return &Error{Kind: KindAlreadyExists, Msg: fmt.Sprintf("a role named %q exists already (id %s)", taken.Name, taken.ID)}
	}
	return nil
}

func errDefaultRole(r store.Role) error {
	name := r.Name
	if name == "" {
		name = r.ID
	}
	return Invalid("role %q is a default role and cannot be changed or deleted", name)
}

func validateRoleID(id string) error { return validateUUID("roleID", id) }

// validateUUID checks that id is a UUID in canonical 36-character form.
func validateUUID(field, id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return Invalid("%s: %q is not a UUID", field, truncate(id, 64))
	}
	return nil
}
