package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

func (a *app) dbCommand() *cobra.Command {
	return group("db", "Registered databases: create, list, get, terminate, usage",
		`  tokenbroker db create hi --keyspace ks1 --cloud-provider GCP --region us-east1
  tokenbroker db list
  tokenbroker db usage 3c4a8f51-0e3f-4c1b-9a5e-7f0d2b6c8e91 --month 2026-11`,
		a.dbCreateCommand(), a.dbListCommand(), a.dbGetCommand(), a.dbTerminateCommand(), a.dbUsageCommand())
}

func (a *app) dbCreateCommand() *cobra.Command {
	var req tbv1.CreateDatabaseRequest
	c := &cobra.Command{
		Use:   "create NAME --keyspace KEYSPACE",
		Short: "Register a database; its scoped token is printed once",
		Long: `Register a database. The broker creates a role scoped to it and an
application token holding that role; the token and its secret are printed
only here.`,
		Example: `  tokenbroker db create hi --keyspace ks1
  tokenbroker db create orders --keyspace orders --cloud-provider GCP --tier serverless --region us-east1`,
		Args: exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			req.Name = args[0]
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.db.CreateDatabase(ctx, &req)
				if err != nil {
					return err
				}
				a.warnSecret("the database token's secret and token")
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields("id", resp.GetId(), "roleId", resp.GetRoleId(), "clientId", resp.GetClientId(),
					"secret", resp.GetSecret(), "token", resp.GetToken())
			})
		}),
	}
	f := c.Flags()
	f.StringVar(&req.Keyspace, "keyspace", "", "the database's keyspace")
	f.StringVar(&req.CloudProvider, "cloud-provider", "", "informational, e.g. GCP")
	f.StringVar(&req.Tier, "tier", "", "informational, e.g. serverless")
	f.StringVar(&req.Region, "region", "", "informational, e.g. us-east1")
	f.Int32Var(&req.CapacityUnits, "capacity-units", 0, "1 to 100 (default 1)")
	return c
}

func dbFields(d *tbv1.Database) []string {
	i, m := d.GetInfo(), d.GetMetrics()
	return []string{
		"id", d.GetId(),
		"name", i.GetName(),
		"status", d.GetStatus(),
		"keyspace", i.GetKeyspace(),
		"cloudProvider", orDash(i.GetCloudProvider()),
		"tier", orDash(i.GetTier()),
		"region", orDash(i.GetRegion()),
		"capacityUnits", strconv.Itoa(int(i.GetCapacityUnits())),
		"ownerId", d.GetOwnerId(),
		"created", d.GetCreationTime(),
		"lastUsage", orDash(d.GetLastUsageTime()),
		"reads", count(m.GetReadRequestsTotalCount()),
		"writes", count(m.GetWriteRequestsTotalCount()),
		"errors", count(m.GetErrorsTotalCount()),
	}
}

func count(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (a *app) dbListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the databases the caller may view",
		Example: `  tokenbroker db list` + "\n" + `  tokenbroker db list -o json | jq -r '.databases[] | select(.status == "ACTIVE") | .id'`,
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp := &tbv1.ListDatabasesResponse{}
				err := allPages(func(token string) (string, error) {
					page, err := c.db.ListDatabases(ctx, &tbv1.ListDatabasesRequest{PageSize: 1000, PageToken: token})
					resp.Databases = append(resp.Databases, page.GetDatabases()...)
					return page.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				rows := make([][]string, 0, len(resp.GetDatabases()))
				for _, d := range resp.GetDatabases() {
					rows = append(rows, []string{d.GetId(), d.GetInfo().GetName(), d.GetStatus(), d.GetInfo().GetKeyspace(), orDash(d.GetInfo().GetRegion()), d.GetCreationTime()})
				}
				return a.table([]string{"ID", "NAME", "STATUS", "KEYSPACE", "REGION", "CREATED"}, rows)
			})
		}),
	}
}

func (a *app) dbGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get DATABASE_ID",
		Short:   "Show one database with its usage totals",
		Example: `  tokenbroker db get 3c4a8f51-0e3f-4c1b-9a5e-7f0d2b6c8e91`,
		Args:    exactArgs("DATABASE_ID"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.db.GetDatabase(ctx, &tbv1.GetDatabaseRequest{DatabaseId: args[0]})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields(dbFields(resp.GetDatabase())...)
			})
		}),
	}
}

func (a *app) dbTerminateCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "terminate DATABASE_ID",
		Short:   "Terminate a database (its scoped token is revoked)",
		Example: `  tokenbroker db terminate 3c4a8f51-0e3f-4c1b-9a5e-7f0d2b6c8e91`,
		Args:    exactArgs("DATABASE_ID"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.db.TerminateDatabase(ctx, &tbv1.TerminateDatabaseRequest{DatabaseId: args[0]})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				fmt.Fprintf(a.out, "terminated database %s\n", args[0])
				return nil
			})
		}),
	}
}

func (a *app) dbUsageCommand() *cobra.Command {
	var month string
	c := &cobra.Command{
		Use:     "usage DATABASE_ID [--month YYYY-MM]",
		Short:   "Show a database's usage in one calendar month (UTC)",
		Example: `  tokenbroker db usage 3c4a8f51-0e3f-4c1b-9a5e-7f0d2b6c8e91` + "\n" + `  tokenbroker db usage 3c4a8f51-0e3f-4c1b-9a5e-7f0d2b6c8e91 --month 2026-11 -o json`,
		Args:    exactArgs("DATABASE_ID"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.db.GetDatabaseUsage(ctx, &tbv1.GetDatabaseUsageRequest{DatabaseId: args[0], Month: month})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields("databaseId", resp.GetDatabaseId(), "month", resp.GetMonth(),
					"reads", count(resp.GetReadRequestsCount()), "writes", count(resp.GetWriteRequestsCount()),
					"errors", count(resp.GetErrorsCount()), "lastUsage", orDash(resp.GetLastUsageTime()))
			})
		}),
	}
	c.Flags().StringVar(&month, "month", "", "the month, e.g. 2026-11 (default: the current month, UTC)")
	return c
}
