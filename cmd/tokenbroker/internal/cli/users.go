package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

func (a *app) userCommand() *cobra.Command {
	return group("user", "Database users (username and password, for Stargate logins)",
		`  tokenbroker user create app1 --role "R/W User"
  printf '%s\n' "$PASSWORD" | tokenbroker user create app2 --role "RO User" --password-stdin
  tokenbroker user list`,
		a.userCreateCommand(), a.userListCommand(), a.userGetCommand(), a.userDeleteCommand(), a.userResetPasswordCommand())
}

// newPassword returns a random password: 26 base32 characters, 130 bits.
func newPassword() string { return rand.Text() }

// readPassword reads one line from stdin (without its newline).
func (a *app) readPassword() (string, error) {
	line, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usagef("--password-stdin: stdin held no password")
	}
	return pw, nil
}

// password returns the password to set: from stdin when asked, otherwise
// a generated one (reported so the caller prints it once).
func (a *app) password(fromStdin bool) (pw string, generated bool, err error) {
	if fromStdin {
		pw, err = a.readPassword()
		return pw, false, err
	}
	return newPassword(), true, nil
}

func (a *app) userCreateCommand() *cobra.Command {
	var (
		roles     []string
		fromStdin bool
	)
	c := &cobra.Command{
		Use:   "create USERNAME --role ROLE [--role ROLE]... [--password-stdin]",
		Short: "Create a database user; a generated password is printed once",
		Long: `Create a database user bound to roles (by name or ID). The password is
read from stdin with --password-stdin (never from a flag, which other users
of the machine could see); otherwise one is generated and printed once.`,
		Example: `  tokenbroker user create app1 --role "R/W User"
  printf '%s\n' "$PASSWORD" | tokenbroker user create app2 --role "RO User" --password-stdin`,
		Args: exactArgs("USERNAME"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			if len(roles) == 0 {
				return usagef("--role is required (a role name or ID)")
			}
			pw, generated, err := a.password(fromStdin)
			if err != nil {
				return err
			}
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				ids, err := a.resolveRoles(ctx, c, roles)
				if err != nil {
					return err
				}
				resp, err := c.auth.CreateUser(ctx, &tbv1.CreateUserRequest{Username: args[0], Password: pw, Roles: ids})
				if err != nil {
					return err
				}
				if generated {
					a.warnSecret("the generated password")
				}
				if a.json() {
					return a.printUserJSON(resp, generated, pw)
				}
				kv := userFields(resp.GetUser())
				if generated {
					kv = append(kv, "password", pw)
				}
				return a.fields(kv...)
			})
		}),
	}
	c.Flags().StringArrayVarP(&roles, "role", "r", nil, "role name or ID (repeatable)")
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	return c
}

// printUserJSON prints the API's answer, with "generatedPassword" added
// when the command generated the password (the API's answer has none).
func (a *app) printUserJSON(resp *tbv1.CreateUserResponse, generated bool, pw string) error {
	if !generated {
		return a.printProto(resp)
	}
	b, err := jsonOptions.Marshal(resp)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	m["generatedPassword"], _ = json.Marshal(pw)
	return a.printJSON(m)
}

func userFields(u *tbv1.User) []string {
	roles := make([]string, 0, len(u.GetRoles()))
	for _, r := range u.GetRoles() {
		roles = append(roles, r.GetName()+" ("+r.GetId()+")")
	}
	return []string{
		"userId", u.GetUserId(),
		"username", u.GetUsername(),
		"status", u.GetStatus(),
		"roles", strings.Join(roles, "\n"),
		"createdOn", ts(u.GetCreatedOn()),
	}
}

func (a *app) userListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List database users",
		Example: `  tokenbroker user list` + "\n" + `  tokenbroker user list -o json | jq -r '.Users[].Username'`,
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := a.listUsers(ctx, c)
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				rows := make([][]string, 0, len(resp.GetUsers()))
				for _, u := range resp.GetUsers() {
					names := make([]string, 0, len(u.GetRoles()))
					for _, r := range u.GetRoles() {
						names = append(names, r.GetName())
					}
					rows = append(rows, []string{u.GetUserId(), u.GetUsername(), u.GetStatus(), strings.Join(names, ", "), ts(u.GetCreatedOn())})
				}
				return a.table([]string{"USER ID", "USERNAME", "STATUS", "ROLES", "CREATED"}, rows)
			})
		}),
	}
}

// listUsers reads every page of the user list into one response.
func (a *app) listUsers(ctx context.Context, c clients) (*tbv1.ListUsersResponse, error) {
	var resp *tbv1.ListUsersResponse
	err := allPages(func(token string) (string, error) {
		page, err := c.auth.ListUsers(ctx, &tbv1.ListUsersRequest{PageToken: token})
		if err != nil {
			return "", err
		}
		if resp == nil {
			resp = page
		} else {
			resp.Users = append(resp.Users, page.GetUsers()...)
		}
		return page.GetNextPageToken(), nil
	})
	if err != nil {
		return nil, err
	}
	resp.NextPageToken = ""
	return resp, nil
}

// resolveUser turns a username or user ID into an ID.
func (a *app) resolveUser(ctx context.Context, c clients, ref string) (string, error) {
	if _, err := uuid.Parse(ref); err == nil && len(ref) == 36 {
		return strings.ToLower(ref), nil
	}
	resp, err := a.listUsers(ctx, c)
	if err != nil {
		return "", fmt.Errorf("look up user %q by name (give its ID to skip the lookup): %w", ref, err)
	}
	for _, u := range resp.GetUsers() {
		if u.GetUsername() == ref {
			return u.GetUserId(), nil
		}
	}
	return "", fmt.Errorf("no user named %q (see 'tokenbroker user list')", ref)
}

func (a *app) userGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get USER",
		Short:   "Show one database user (by username or ID)",
		Example: `  tokenbroker user get app1`,
		Args:    exactArgs("USER"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				id, err := a.resolveUser(ctx, c, args[0])
				if err != nil {
					return err
				}
				resp, err := c.auth.GetUser(ctx, &tbv1.GetUserRequest{UserId: id})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields(userFields(resp.GetUser())...)
			})
		}),
	}
}

func (a *app) userDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "delete USER",
		Short:   "Delete a database user and revoke its authorization tokens",
		Example: `  tokenbroker user delete app1`,
		Args:    exactArgs("USER"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				id, err := a.resolveUser(ctx, c, args[0])
				if err != nil {
					return err
				}
				resp, err := c.auth.DeleteUser(ctx, &tbv1.DeleteUserRequest{UserId: id})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				fmt.Fprintf(a.out, "deleted user %s\n", id)
				return nil
			})
		}),
	}
}

func (a *app) userResetPasswordCommand() *cobra.Command {
	var fromStdin bool
	c := &cobra.Command{
		Use:   "reset-password USER [--password-stdin]",
		Short: "Set a new password; a generated one is printed once",
		Long: `Set a database user's password (by username or ID), read from stdin with
--password-stdin or generated and printed once. Authorization tokens
already issued stay valid.`,
		Example: `  tokenbroker user reset-password app1
  printf '%s\n' "$NEW_PASSWORD" | tokenbroker user reset-password app1 --password-stdin`,
		Args: exactArgs("USER"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			pw, generated, err := a.password(fromStdin)
			if err != nil {
				return err
			}
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				id, err := a.resolveUser(ctx, c, args[0])
				if err != nil {
					return err
				}
				resp, err := c.auth.ResetUserPassword(ctx, &tbv1.ResetUserPasswordRequest{UserId: id, Password: pw})
				if err != nil {
					return err
				}
				if generated {
					a.warnSecret("the generated password")
				}
				if a.json() {
					if generated {
						return a.printJSON(map[string]string{"generatedPassword": pw})
					}
					return a.printProto(resp)
				}
				if generated {
					return a.fields("userId", id, "password", pw)
				}
				fmt.Fprintf(a.out, "password of user %s changed\n", id)
				return nil
			})
		}),
	}
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	return c
}
