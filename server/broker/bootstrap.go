package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/google/uuid"

	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/keyring"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// BootstrapCredential is the first Organization Administrator token, shown
// once on the first start. Its JSON keys are those of the bootstrap file.
type BootstrapCredential struct {
	ClientID    string    `json:"clientId"`
	Secret      string    `json:"secret"`
	Token       string    `json:"token"`
	OrgID       string    `json:"orgId"`
	Roles       []string  `json:"roles"`
	GeneratedOn time.Time `json:"generatedOn"`
}

// SetupResult is what Setup found or made.
type SetupResult struct {
	Org store.Organization
	// Bootstrap is non-nil only on the first start against an empty store.
	Bootstrap *BootstrapCredential
}

// Setup prepares a store for serving: it syncs the default roles with this
// binary's catalogue and, on the first start, creates the organization and
// its first Organization Administrator token. When bootstrapFile is set, the
// credential is written there (mode 0600) before the store commits, so a
// crash can never leave an organization whose only admin token was lost.
// The keyring must be the one whose Check is (or will be) stored in the org.
func Setup(ctx context.Context, st store.Store, keys *keyring.Keyring, mac *credential.MAC, orgName, bootstrapFile string, now time.Time) (SetupResult, error) {
	// A shared store's local view may trail a setup another broker just
	// committed: catch up first, so that it is found rather than redone.
	if s, ok := st.(store.Syncer); ok {
		if err := s.Sync(ctx); err != nil {
			return SetupResult{}, fmt.Errorf("read organization: %w", err)
		}
	}
	org, err := st.GetOrganization(ctx)
	fresh := errors.Is(err, store.ErrNotFound)
	switch {
	case fresh:
		org = store.Organization{ID: uuid.NewString(), Name: orgName, CreatedAt: now.UTC(), KeyCheck: keys.Check()}
	case err != nil:
		return SetupResult{}, fmt.Errorf("read organization: %w", err)
	case !keys.Matches(org.KeyCheck):
		return SetupResult{}, errors.New("the key file does not belong to this database: every stored token would be unverifiable; restore the right key file")
	}
	if err := syncDefaultRoles(ctx, st, org.ID); err != nil {
		return SetupResult{}, err
	}
	if !fresh {
		return SetupResult{Org: org}, nil
	}

	cred, err := credential.New()
	if err != nil {
		return SetupResult{}, fmt.Errorf("generate bootstrap credential: %w", err)
	}
	t := store.Token{
		ClientID: cred.ClientID, OrgID: org.ID,
		Roles:       []string{policy.OrganizationAdministratorID},
		Description: "bootstrap Organization Administrator token",
		SecretMAC:   mac.Sum(cred.Token),
		GeneratedOn: now.UTC(),
	}
	boot := &BootstrapCredential{
		ClientID: cred.ClientID, Secret: cred.Secret, Token: cred.Token,
		OrgID: org.ID, Roles: t.Roles, GeneratedOn: t.GeneratedOn,
	}
	if bootstrapFile != "" {
		// A file already there belongs to another (or an earlier) database:
		// overwriting it could destroy the only copy of that one's
		// credential, and leaving it would hand out a token that does not
		// work here.
		if _, err := os.Lstat(bootstrapFile); err == nil {
			return SetupResult{}, fmt.Errorf("bootstrap file %s already exists but the database is new: it belongs to another database; move it away or choose another --bootstrap-file", bootstrapFile)
		}
		data, err := json.MarshalIndent(boot, "", "  ")
		if err != nil {
			return SetupResult{}, err
		}
		if err := keyring.WriteFileAtomic(bootstrapFile, append(data, '\n')); err != nil {
			return SetupResult{}, fmt.Errorf("write bootstrap file: %w", err)
		}
	}
	if err := st.Bootstrap(ctx, org, t); err != nil {
		return SetupResult{}, fmt.Errorf("bootstrap organization: %w", err)
	}
	return SetupResult{Org: org, Bootstrap: boot}, nil
}

// syncDefaultRoles makes the stored default roles equal to this binary's
// catalogue, so an upgrade that refines a default role's permissions takes
// effect without a migration.
func syncDefaultRoles(ctx context.Context, st store.Store, orgID string) error {
	for _, want := range policy.DefaultRoles(orgID) {
		have, err := st.GetRole(ctx, want.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if err := st.CreateRole(ctx, want); err != nil {
				return fmt.Errorf("create default role %q: %w", want.Name, err)
			}
		case err != nil:
			return fmt.Errorf("read default role %q: %w", want.Name, err)
		case !sameRole(have, want):
			if _, err := st.UpdateRole(ctx, want.ID, func(r store.Role) (store.Role, error) {
				w := want
				w.ID = r.ID
				return w, nil
			}); err != nil {
				return fmt.Errorf("update default role %q: %w", want.Name, err)
			}
		}
	}
	return nil
}

func sameRole(a, b store.Role) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}
