package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

func (a *app) tenantCommand() *cobra.Command {
	return group("tenant", "Streaming tenants (served by your Pulsar cluster)",
		`  tokenbroker tenant create acme --cluster pulsar-local
  tokenbroker tenant list
  tokenbroker tenant keys acme`,
		a.tenantCreateCommand(), a.tenantListCommand(), a.tenantGetCommand(), a.tenantDeleteCommand(), a.tenantKeysCommand())
}

func tenantFields(t *tbv1.Tenant) []string {
	return []string{
		"tenantName", t.GetTenantName(),
		"clusterName", t.GetClusterName(),
		"status", t.GetStatus(),
		"tokenFormat", t.GetTokenFormat(),
		"webServiceUrl", orDash(t.GetWebServiceUrl()),
		"brokerServiceUrl", orDash(t.GetBrokerServiceUrl()),
		"websocketUrl", orDash(t.GetWebsocketUrl()),
		"cloudProvider", orDash(t.GetCloudProvider()),
		"cloudRegion", orDash(t.GetCloudRegion()),
		"orgId", t.GetAstraOrgGuid(),
	}
}

func (a *app) tenantCreateCommand() *cobra.Command {
	var req tbv1.CreateTenantRequest
	c := &cobra.Command{
		Use:   "create NAME --cluster CLUSTER",
		Short: "Create a streaming tenant; its first admin Pulsar token is printed once",
		Long: `Create a streaming tenant on a Pulsar cluster. The answer carries the
tenant's first admin Pulsar token, printed only here.`,
		Example: `  tokenbroker tenant create acme --cluster pulsar-local
  tokenbroker tenant create legacy --cluster pulsar-local --token-format hs256 --web-service-url http://pulsar:8080`,
		Args: exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			if req.ClusterName == "" {
				return usagef("--cluster is required")
			}
			req.TenantName = args[0]
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.pulsar.CreateTenant(ctx, &req)
				if err != nil {
					return err
				}
				a.warnSecret("the tenant's first admin Pulsar token")
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields(append(tenantFields(resp.GetTenant()), "pulsarToken", resp.GetTenant().GetPulsarToken())...)
			})
		}),
	}
	f := c.Flags()
	f.StringVar(&req.ClusterName, "cluster", "", "the Pulsar cluster's name (required)")
	f.StringVar(&req.WebServiceUrl, "web-service-url", "", "the cluster's web service URL (http://...:8080)")
	f.StringVar(&req.BrokerServiceUrl, "broker-service-url", "", "the cluster's broker service URL (pulsar://...:6650)")
	f.StringVar(&req.WebsocketUrl, "websocket-url", "", "the cluster's websocket URL")
	f.StringVar(&req.CloudProvider, "cloud-provider", "", "informational")
	f.StringVar(&req.CloudRegion, "cloud-region", "", "informational")
	f.StringVar(&req.TokenFormat, "token-format", "", "rs256 (default: RSA-signed, OIDC/JWKS) or hs256 (Pulsar's shared secret)")
	return c
}

func (a *app) tenantListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List streaming tenants",
		Example: `  tokenbroker tenant list` + "\n" + `  tokenbroker tenant list -o json | jq -r '.tenants[].tenantName'`,
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp := &tbv1.ListTenantsResponse{}
				err := allPages(func(token string) (string, error) {
					page, err := c.pulsar.ListTenants(ctx, &tbv1.ListTenantsRequest{PageToken: token})
					resp.Tenants = append(resp.Tenants, page.GetTenants()...)
					return page.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				rows := make([][]string, 0, len(resp.GetTenants()))
				for _, t := range resp.GetTenants() {
					rows = append(rows, []string{t.GetTenantName(), t.GetClusterName(), t.GetTokenFormat(), t.GetStatus(), orDash(t.GetWebServiceUrl())})
				}
				return a.table([]string{"NAME", "CLUSTER", "FORMAT", "STATUS", "WEB SERVICE URL"}, rows)
			})
		}),
	}
}

func (a *app) tenantGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get NAME",
		Short:   "Show one streaming tenant",
		Example: `  tokenbroker tenant get acme`,
		Args:    exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.pulsar.GetTenant(ctx, &tbv1.GetTenantRequest{Tenant: args[0]})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields(tenantFields(resp.GetTenant())...)
			})
		}),
	}
}

func (a *app) tenantDeleteCommand() *cobra.Command {
	var cluster string
	c := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a streaming tenant and every Pulsar token issued for it",
		Example: `  tokenbroker tenant delete acme` + "\n" + `  tokenbroker tenant delete acme --cluster pulsar-local`,
		Args:    exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.pulsar.DeleteTenant(ctx, &tbv1.DeleteTenantRequest{Tenant: args[0], Cluster: cluster})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				fmt.Fprintf(a.out, "deleted tenant %s\n", args[0])
				return nil
			})
		}),
	}
	c.Flags().StringVar(&cluster, "cluster", "", "refuse unless the tenant is on this cluster")
	return c
}

func (a *app) tenantKeysCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keys NAME",
		Short: "Show what a Pulsar broker needs to verify the tenant's tokens",
		Long: `Show the tenant's verification keys for broker.conf: tokenPublicKey and
tokenPublicAlg (rs256 tenants) or tokenSecretKey (hs256 tenants; a secret:
keep the output out of logs), and the issuer and audience for Pulsar's
OpenID provider.`,
		Example: `  tokenbroker tenant keys acme
  tokenbroker tenant keys acme -o json | jq -r .tokenPublicKey`,
		Args: exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.pulsar.GetTenantTokenKeys(ctx, &tbv1.GetTenantTokenKeysRequest{Tenant: args[0]})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields(
					"tokenFormat", resp.GetTokenFormat(),
					"tokenPublicKey", orDash(resp.GetTokenPublicKey()),
					"tokenPublicAlg", orDash(resp.GetTokenPublicAlg()),
					"tokenSecretKey", orDash(resp.GetTokenSecretKey()),
					"kid", orDash(resp.GetKid()),
					"issuer", resp.GetIssuer(),
					"audience", resp.GetAudience(),
				)
			})
		}),
	}
}

func (a *app) pulsarTokenCommand() *cobra.Command {
	return group("pulsar-token", "Pulsar JWTs of a streaming tenant: create, list, delete",
		`  tokenbroker pulsar-token create acme --exp 30d --type non-admin --role app1
  tokenbroker pulsar-token list acme
  tokenbroker pulsar-token delete acme 0f7c2d9e-1b2a-4c3d-8e9f-a1b2c3d4e5f6`,
		a.pulsarTokenCreateCommand(), a.pulsarTokenListCommand(), a.pulsarTokenDeleteCommand())
}

func (a *app) pulsarTokenCreateCommand() *cobra.Command {
	var req tbv1.CreatePulsarTokenRequest
	c := &cobra.Command{
		Use:   "create TENANT [--exp DURATION] [--type admin|non-admin] [--role ROLE]",
		Short: "Issue a Pulsar JWT for a tenant; it is printed once",
		Example: `  tokenbroker pulsar-token create acme
  tokenbroker pulsar-token create acme --exp 30d --type non-admin --role app1`,
		Args: exactArgs("TENANT"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			req.Tenant = args[0]
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.pulsar.CreatePulsarToken(ctx, &req)
				if err != nil {
					return err
				}
				a.warnSecret("the Pulsar token")
				if a.json() {
					return a.printProto(resp)
				}
				return a.fields("id", resp.GetId(), "rolename", resp.GetRolename(), "token", resp.GetToken())
			})
		}),
	}
	f := c.Flags()
	f.StringVar(&req.Exp, "exp", "", `expiry: "never" (default), 7d, 30d, 60d, 90d, 180d, 1y, or <n>m|h|d|w|y (at least 5m)`)
	f.StringVar(&req.Type, "type", "", `"admin" (default) or "non-admin" (needs --role)`)
	f.StringVar(&req.Role, "role", "", `the Pulsar role (the sub claim); default for admin tokens "<tenant>-admin"`)
	return c
}

func claimString(s *structpb.Struct, key string) string {
	v, ok := s.GetFields()[key]
	if !ok {
		return ""
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		return time.Unix(int64(k.NumberValue), 0).UTC().Format(time.RFC3339)
	}
	return ""
}

func (a *app) pulsarTokenListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list TENANT",
		Short:   "List a tenant's Pulsar tokens (their claims, never the tokens)",
		Example: `  tokenbroker pulsar-token list acme` + "\n" + `  tokenbroker pulsar-token list acme -o json | jq -r '.tokens[].tokenid'`,
		Args:    exactArgs("TENANT"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp := &tbv1.ListPulsarTokensResponse{}
				err := allPages(func(token string) (string, error) {
					page, err := c.pulsar.ListPulsarTokens(ctx, &tbv1.ListPulsarTokensRequest{Tenant: args[0], PageToken: token})
					resp.Tokens = append(resp.Tokens, page.GetTokens()...)
					return page.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				rows := make([][]string, 0, len(resp.GetTokens()))
				for _, t := range resp.GetTokens() {
					rows = append(rows, []string{claimString(t, "tokenid"), claimString(t, "sub"), claimString(t, "iat"), orNever(claimString(t, "exp"))})
				}
				return a.table([]string{"TOKEN ID", "ROLE (sub)", "ISSUED", "EXPIRES"}, rows)
			})
		}),
	}
}

func (a *app) pulsarTokenDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "delete TENANT TOKEN_ID",
		Short:   "Delete a Pulsar token; Check refuses it from the next call on",
		Example: `  tokenbroker pulsar-token delete acme 0f7c2d9e-1b2a-4c3d-8e9f-a1b2c3d4e5f6`,
		Args:    exactArgs("TENANT", "TOKEN_ID"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				resp, err := c.pulsar.DeletePulsarToken(ctx, &tbv1.DeletePulsarTokenRequest{Tenant: args[0], TokenId: args[1]})
				if err != nil {
					return err
				}
				if a.json() {
					return a.printProto(resp)
				}
				fmt.Fprintf(a.out, "deleted Pulsar token %s of tenant %s\n", args[1], args[0])
				return nil
			})
		}),
	}
}
