package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

func (a *app) tokenCommand() *cobra.Command {
	return group("token", "Application tokens (AstraCS:...): create, list, rotate, delete, revoke",
		`  tokenbroker token create --role "R/W Svc Acct" --description "service A"
  tokenbroker token list
  tokenbroker token rotate XGyYZpLqvwmFcbNgkRmyAOuo --grace 1h
  tokenbroker token delete XGyYZpLqvwmFcbNgkRmyAOuo`,
		a.tokenCreateCommand(), a.tokenListCommand(), a.tokenRotateCommand(), a.tokenDeleteCommand(), a.tokenRevokeCommand())
}

func (a *app) tokenCreateCommand() *cobra.Command {
	var (
		roles       []string
		description string
		expiresIn   string
		expiresAt   string
	)
	c := &cobra.Command{
		Use:   "create --role ROLE [--role ROLE]...",
		Short: "Create an application token; its secret and token are printed once",
		Long: `Create an application token bound to one or more roles (by name or ID).
The token (AstraCS:...) and its secret are printed only here, with a
warning on stderr; the broker keeps only a keyed hash of them.`,
		Example: `  tokenbroker token create --role "R/W Svc Acct" --description "service A"
  tokenbroker token create --role "Database Administrator" --expires-in 720h
  TOKEN=$(tokenbroker token create --role "RO Svc Acct" -o json | jq -r .token)`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			if len(roles) == 0 {
				return usagef("--role is required (a role name or ID; see 'tokenbroker role list')")
			}
			var expiry *timestamppb.Timestamp
			switch {
			case expiresIn != "" && expiresAt != "":
				return usagef("give --expires-in or --expires-at, not both")
			case expiresIn != "":
				d, err := parseDuration(expiresIn)
				if err != nil || d <= 0 {
					return usagef("--expires-in %q: want a positive duration such as 720h or 30d", expiresIn)
				}
				expiry = timestamppb.New(a.env.Now().Add(d))
			case expiresAt != "":
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return usagef("--expires-at %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", expiresAt)
				}
				expiry = timestamppb.New(t)
			}
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				ids, err := a.resolveRoles(ctx, c, roles)
				if err != nil {
					return err
				}
				resp, err := c.tokens.CreateToken(ctx, &tbv1.CreateTokenRequest{Roles: ids, Description: description, TokenExpiry: expiry})
				if err != nil {
					return err
				}
				a.warnSecret("the token's secret and token")
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields(
					"clientId", resp.GetClientId(),
					"secret", resp.GetSecret(),
					"token", resp.GetToken(),
					"orgId", resp.GetOrgId(),
					"roles", strings.Join(resp.GetRoles(), "\n"),
					"description", orDash(resp.GetDescription()),
					"generatedOn", ts(resp.GetGeneratedOn()),
					"expires", orNever(ts(resp.GetTokenExpiry())),
				)
			})
		}),
	}
	f := c.Flags()
	f.StringArrayVarP(&roles, "role", "r", nil, "role name or ID to bind (repeatable); fixed for the token's life")
	f.StringVarP(&description, "description", "d", "", "free text describing the token")
	f.StringVar(&expiresIn, "expires-in", "", "expire after this long (e.g. 720h, 30d); default never")
	f.StringVar(&expiresAt, "expires-at", "", "expire at this RFC 3339 time; default never")
	return c
}

func (a *app) tokenListCommand() *cobra.Command {
	var unusedFor, role string
	c := &cobra.Command{
		Use:   "list",
		Short: "List application tokens (never their secrets)",
		Example: `  tokenbroker token list
  tokenbroker token list --unused-for 30d --role "R/W Svc Acct"
  tokenbroker token list -o json | jq -r '.clients[] | select(.lastUsedOn == null) | .clientId'`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				req := &tbv1.ListTokensRequest{UnusedFor: unusedFor}
				if role != "" {
					id, err := a.resolveRole(ctx, c, role)
					if err != nil {
						return err
					}
					req.Role = id
				}
				resp := &tbv1.ListTokensResponse{}
				err := allPages(func(token string) (string, error) {
					req.PageToken = token
					page, err := c.tokens.ListTokens(ctx, req)
					resp.Clients = append(resp.Clients, page.GetClients()...)
					return page.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.tokenTable(ctx, c, resp.GetClients())
			})
		}),
	}
	c.Flags().StringVar(&unusedFor, "unused-for", "", "only tokens not used for at least this long (e.g. 30d)")
	c.Flags().StringVar(&role, "role", "", "only tokens bound to this role (name or ID)")
	return c
}

// tokenTable prints tokens as a table, with role names where readable.
func (a *app) tokenTable(ctx context.Context, c clients, tokens []*tbv1.TokenInfo) error {
	names := a.roleNames(ctx, c)
	rows := make([][]string, 0, len(tokens))
	for _, t := range tokens {
		rows = append(rows, []string{
			t.GetClientId(), names.join(t.GetRoles()), orDash(t.GetDescription()),
			ts(t.GetGeneratedOn()), orNever(ts(t.GetTokenExpiry())), orDash(ts(t.GetLastUsedOn())),
		})
	}
	return a.table([]string{"CLIENT ID", "ROLES", "DESCRIPTION", "GENERATED", "EXPIRES", "LAST USED"}, rows)
}

func (a *app) tokenRotateCommand() *cobra.Command {
	var grace string
	c := &cobra.Command{
		Use:   "rotate CLIENT_ID",
		Short: "Replace an application token; the new one is printed once, the old one works for --grace",
		Long: `Rotate an application token: a new token (new client ID and secret, same
roles, description and lifetime) is created and printed once, with a
warning on stderr. The old token keeps working until the grace period ends
(default 0: refused at once), then is refused, with the authorization
tokens minted from it.`,
		Example: `  tokenbroker token rotate XGyYZpLqvwmFcbNgkRmyAOuo --grace 1h
  NEW=$(tokenbroker token rotate XGyYZpLqvwmFcbNgkRmyAOuo --grace 10m -o json | jq -r .token.token)`,
		Args: exactArgs("CLIENT_ID"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.tokens.RotateToken(ctx, &tbv1.RotateTokenRequest{ClientId: args[0], GracePeriod: grace})
				if err != nil {
					return err
				}
				a.warnSecret("the new token's secret and token")
				if a.json() {
					return a.printProto(resp)
				}
				t := resp.GetToken()
				return a.fields(
					"clientId", t.GetClientId(),
					"secret", t.GetSecret(),
					"token", t.GetToken(),
					"roles", strings.Join(t.GetRoles(), "\n"),
					"expires", orNever(ts(t.GetTokenExpiry())),
					"previousClientId", resp.GetPreviousClientId(),
					"previousWorksUntil", ts(resp.GetPreviousExpiry()),
				)
			})
		}),
	}
	c.Flags().StringVar(&grace, "grace", "", "how long the old token keeps working (e.g. 10m, 1h, 7d; at most 7d; default 0)")
	return c
}

func (a *app) tokenRevokeCommand() *cobra.Command {
	var role, unusedFor string
	var dryRun bool
	c := &cobra.Command{
		Use:   "revoke --role ROLE [--unused-for 30d] [--dry-run]",
		Short: "Revoke every token of a role (optionally only those unused for a while)",
		Long: `Revoke, in one call, every application token bound to a role, or only
those not used for --unused-for. --dry-run lists what would go and revokes
nothing. The caller's own token is never revoked.`,
		Example: `  tokenbroker token revoke --role "R/W Svc Acct" --unused-for 90d --dry-run
  tokenbroker token revoke --role "R/W Svc Acct" --unused-for 90d`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			if role == "" {
				return usagef("--role is required (a role name or ID)")
			}
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				id, err := a.resolveRole(ctx, c, role)
				if err != nil {
					return err
				}
				resp, err := c.tokens.RevokeTokens(ctx, &tbv1.RevokeTokensRequest{Role: id, UnusedFor: unusedFor, DryRun: dryRun})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				if dryRun {
					fmt.Fprintf(a.out, "would revoke %d token(s):\n", resp.GetRevokedCount())
				} else {
					fmt.Fprintf(a.out, "revoked %d token(s):\n", resp.GetRevokedCount())
				}
				if err := a.tokenTable(ctx, c, resp.GetClients()); err != nil {
					return err
				}
				if resp.GetClientsTruncated() {
					// The answer lists a bounded number; say where the rest are.
					where := "the audit log has every one: tokenbroker audit list"
					if dryRun {
						where = fmt.Sprintf("every one: tokenbroker token list --role %q", role)
						if unusedFor != "" {
							where += fmt.Sprintf(" --unused-for %q", unusedFor)
						}
					}
					fmt.Fprintf(a.out, "(the first %d of %d listed; %s)\n", len(resp.GetClients()), resp.GetRevokedCount(), where)
				}
				return nil
			})
		}),
	}
	f := c.Flags()
	f.StringVar(&role, "role", "", "the role (name or ID) whose tokens go")
	f.StringVar(&unusedFor, "unused-for", "", "only tokens not used for at least this long (e.g. 90d)")
	f.BoolVar(&dryRun, "dry-run", false, "list what would be revoked, revoke nothing")
	return c
}

func (a *app) tokenDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID [CLIENT_ID]...",
		Short: "Revoke application tokens; they are refused from the next call on",
		Long: `Revoke application tokens by client ID. Authorization tokens minted from
them are revoked with them. Stops at the first failure.`,
		Example: `  tokenbroker token delete XGyYZpLqvwmFcbNgkRmyAOuo
  tokenbroker token list -o json | jq -r '.clients[] | select(.description == "ci") | .clientId' | xargs tokenbroker token delete`,
		Args: minArgs("CLIENT_ID"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				for _, id := range args {
					resp, err := c.tokens.DeleteToken(ctx, &tbv1.DeleteTokenRequest{ClientId: id})
					if err != nil {
						return fmt.Errorf("delete token %s: %w", id, err)
					}
					if a.json() {
						if err := a.printProto(resp); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(a.out, "deleted token %s\n", id)
				}
				return nil
			})
		}),
	}
}

// parseDuration is time.ParseDuration plus a "d" (24h) unit: "30d".
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// roleIndex maps role IDs to names, for tables.
type roleIndex map[string]string

func (r roleIndex) join(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if n, ok := r[id]; ok {
			out[i] = n
		} else {
			out[i] = id
		}
	}
	return strings.Join(out, ", ")
}

// roleNames lists roles to show names in tables; a caller that may not
// read roles sees IDs instead (best effort, never a failure).
func (a *app) roleNames(ctx context.Context, c clients) roleIndex {
	idx := roleIndex{}
	resp, err := listRoles(ctx, c)
	if err != nil {
		return idx
	}
	for _, r := range resp.GetRoles() {
		idx[r.GetId()] = r.GetName()
	}
	return idx
}

// listRoles reads every page of the role list into one response.
func listRoles(ctx context.Context, c clients) (*tbv1.ListRolesResponse, error) {
	resp := &tbv1.ListRolesResponse{}
	err := allPages(func(token string) (string, error) {
		page, err := c.tokens.ListRoles(ctx, &tbv1.ListRolesRequest{PageToken: token})
		resp.Roles = append(resp.Roles, page.GetRoles()...)
		return page.GetNextPageToken(), err
	})
	return resp, err
}

// resolveRoles turns role names or IDs into IDs. IDs (UUIDs) are passed
// through unchanged, so a caller without org-role-read can still name
// roles by ID; names are looked up with ListRoles, exactly first, then
// ignoring case when that is unambiguous.
func (a *app) resolveRoles(ctx context.Context, c clients, refs []string) ([]string, error) {
	out := make([]string, 0, len(refs))
	var roles []*tbv1.Role
	for _, ref := range refs {
		if _, err := uuid.Parse(ref); err == nil && len(ref) == 36 {
			out = append(out, strings.ToLower(ref))
			continue
		}
		if roles == nil {
			resp, err := listRoles(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("look up role %q by name (give its ID to skip the lookup): %w", ref, err)
			}
			roles = resp.GetRoles()
		}
		id, err := matchRole(roles, ref)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func matchRole(roles []*tbv1.Role, name string) (string, error) {
	for _, r := range roles {
		if r.GetName() == name {
			return r.GetId(), nil
		}
	}
	var folded []*tbv1.Role
	for _, r := range roles {
		if strings.EqualFold(r.GetName(), name) {
			folded = append(folded, r)
		}
	}
	switch len(folded) {
	case 1:
		return folded[0].GetId(), nil
	case 0:
		return "", fmt.Errorf("no role named %q (see 'tokenbroker role list')", name)
	default:
		ids := make([]string, len(folded))
		for i, r := range folded {
			ids[i] = r.GetId()
		}
		return "", fmt.Errorf("role name %q is ambiguous (%s): give the exact name or an ID", name, strings.Join(ids, ", "))
	}
}

func (a *app) resolveRole(ctx context.Context, c clients, ref string) (string, error) {
	ids, err := a.resolveRoles(ctx, c, []string{ref})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

func (a *app) roleCommand() *cobra.Command {
	return group("role", "Roles (default and custom): list, get, create, update, delete",
		`  tokenbroker role list
  tokenbroker role get "R/W Svc Acct"
  tokenbroker role create keyspaceRole --action db-all-keyspace-create --action db-all-keyspace-describe`,
		a.roleListCommand(), a.roleGetCommand(), a.roleCreateCommand(), a.roleUpdateCommand(), a.roleDeleteCommand())
}

func (a *app) roleListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the default and custom roles",
		Example: `  tokenbroker role list
  tokenbroker role list -o json | jq -r '.roles[] | select(.Type == "custom") | .Name'`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := listRoles(ctx, c)
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				rows := make([][]string, 0, len(resp.GetRoles()))
				for _, r := range resp.GetRoles() {
					rows = append(rows, []string{r.GetId(), r.GetType(), r.GetName(), strconv.Itoa(len(r.GetPolicy().GetActions()))})
				}
				return a.table([]string{"ID", "TYPE", "NAME", "ACTIONS"}, rows)
			})
		}),
	}
}

func (a *app) printRole(r *tbv1.Role) error {
	p := r.GetPolicy()
	return a.fields(
		"id", r.GetId(),
		"name", r.GetName(),
		"type", r.GetType(),
		"description", orDash(p.GetDescription()),
		"effect", p.GetEffect(),
		"resources", strings.Join(p.GetResources(), "\n"),
		"actions", strings.Join(p.GetActions(), "\n"),
		"lastUpdate", orDash(r.GetLastUpdateDateTime()),
		"lastUpdateBy", orDash(r.GetLastUpdateUserId()),
	)
}

func (a *app) roleGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get ROLE",
		Short: "Show one role (by name or ID) with its policy",
		Example: `  tokenbroker role get "Organization Administrator"
  tokenbroker role get b4ed0e9e-67e8-47b6-8b58-c6629be961a9 -o json | jq .role.Policy.actions`,
		Args: exactArgs("ROLE"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				id, err := a.resolveRole(ctx, c, args[0])
				if err != nil {
					return err
				}
				resp, err := c.tokens.GetRole(ctx, &tbv1.GetRoleRequest{RoleId: id})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.printRole(resp.GetRole())
			})
		}),
	}
}

// policyFlags are the flags that set a role's policy.
type policyFlags struct {
	actions, resources []string
	description        string
}

func (p *policyFlags) add(c *cobra.Command, what string) {
	f := c.Flags()
	f.StringArrayVarP(&p.actions, "action", "a", nil, "permission the role allows, e.g. db-table-select (repeatable)"+what)
	f.StringArrayVar(&p.resources, "resource", nil, "DRN the actions apply to, e.g. drn:astra:org:<orgId>:db:* (repeatable)"+what)
	f.StringVarP(&p.description, "description", "d", "", "the policy's description")
}

func (a *app) roleCreateCommand() *cobra.Command {
	var p policyFlags
	c := &cobra.Command{
		Use:   "create NAME --action ACTION [--action ACTION]... [--resource DRN]...",
		Short: "Create a custom role",
		Long: `Create a custom role allowing the given actions on the given resources.
Without --resource, the role applies to the organization itself
(drn:astra:org:<orgId>). 'tokenbroker role get "Organization Administrator"'
lists every action.`,
		Example: `  tokenbroker role create keyspaceRole --action db-all-keyspace-create --action db-all-keyspace-describe
  tokenbroker role create readers --action db-table-select --resource 'drn:astra:org:<orgId>:db:*:keyspace:*:table:*'`,
		Args: exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			if len(p.actions) == 0 {
				return usagef("--action is required (at least one)")
			}
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resources := p.resources
				if len(resources) == 0 {
					org, err := c.tokens.GetCurrentOrg(ctx, &tbv1.GetCurrentOrgRequest{})
					if err != nil {
						return fmt.Errorf("read the organization for the default resource (or give --resource): %w", err)
					}
					resources = []string{"drn:astra:org:" + org.GetId()}
				}
				resp, err := c.tokens.CreateRole(ctx, &tbv1.CreateRoleRequest{Name: args[0], Policy: &tbv1.Policy{
					Description: p.description, Resources: resources, Actions: p.actions, Effect: "allow",
				}})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.printRole(resp.GetRole())
			})
		}),
	}
	p.add(c, "")
	return c
}

func (a *app) roleUpdateCommand() *cobra.Command {
	var (
		p    policyFlags
		name string
	)
	c := &cobra.Command{
		Use:   "update ROLE [--name NAME] [--action ACTION]... [--resource DRN]... [--description TEXT]",
		Short: "Change a custom role's name or policy",
		Long: `Change a custom role (by name or ID). What is not given stays as it is;
--action and --resource, when given, replace the whole list. Default roles
cannot be changed.`,
		Example: `  tokenbroker role update keyspaceRole --action db-all-keyspace-describe
  tokenbroker role update keyspaceRole --name keyspaceReaders`,
		Args: exactArgs("ROLE"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			if name == "" && len(p.actions) == 0 && len(p.resources) == 0 && p.description == "" {
				return usagef("nothing to change: give --name, --action, --resource or --description")
			}
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				id, err := a.resolveRole(ctx, c, args[0])
				if err != nil {
					return err
				}
				cur, err := c.tokens.GetRole(ctx, &tbv1.GetRoleRequest{RoleId: id})
				if err != nil {
					return err
				}
				r := cur.GetRole()
				pol := &tbv1.Policy{
					Description: r.GetPolicy().GetDescription(), Resources: slices.Clone(r.GetPolicy().GetResources()),
					Actions: slices.Clone(r.GetPolicy().GetActions()), Effect: r.GetPolicy().GetEffect(),
				}
				newName := r.GetName()
				if name != "" {
					newName = name
				}
				if len(p.actions) > 0 {
					pol.Actions = p.actions
				}
				if len(p.resources) > 0 {
					pol.Resources = p.resources
				}
				if p.description != "" {
					pol.Description = p.description
				}
				resp, err := c.tokens.UpdateRole(ctx, &tbv1.UpdateRoleRequest{RoleId: id, Name: newName, Policy: pol})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.printRole(resp.GetRole())
			})
		}),
	}
	p.add(c, "; replaces the list")
	c.Flags().StringVar(&name, "name", "", "new name")
	return c
}

func (a *app) roleDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ROLE",
		Short: "Delete a custom role that no live token or user holds",
		Example: `  tokenbroker role delete keyspaceRole
  tokenbroker role delete 7a2bd1f4-4fd5-4c36-9e08-3f0c5ab0c9a1`,
		Args: exactArgs("ROLE"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				id, err := a.resolveRole(ctx, c, args[0])
				if err != nil {
					return err
				}
				resp, err := c.tokens.DeleteRole(ctx, &tbv1.DeleteRoleRequest{RoleId: id})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				fmt.Fprintf(a.out, "deleted role %s\n", id)
				return nil
			})
		}),
	}
}
