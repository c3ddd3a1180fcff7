// Package token implements the gRPC TokenService: application tokens, roles
// and the current organization. Handlers are thin: validate the shape of the
// request, call the broker, convert the result, and send every error through
// rpcerr.ToStatus. Authentication and authorization already happened in the
// interceptors (server/rules.go).
package token

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/gateway"
	"github.com/tokenbroker/tokenbroker/server/paging"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
	"github.com/tokenbroker/tokenbroker/store"
)

// Config holds the service's dependencies.
type Config struct {
	Broker *broker.Broker
	Logger *slog.Logger
}

// Service implements tbv1.TokenServiceServer.
type Service struct {
	// Embedded so that adding an RPC to the proto breaks the build until it
	// is implemented here (and given a rule in server/rules.go).
	tbv1.UnsafeTokenServiceServer
	b   *broker.Broker
	log *slog.Logger
}

// New returns the service.
func New(cfg Config) *Service { return &Service{b: cfg.Broker, log: cfg.Logger} }

// Register adds the service to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { tbv1.RegisterTokenServiceServer(r, s) }

func (s *Service) fail(ctx context.Context, err error) error { return rpcerr.ToStatus(ctx, s.log, err) }

func (s *Service) CreateToken(ctx context.Context, req *tbv1.CreateTokenRequest) (*tbv1.CreateTokenResponse, error) {
	in := broker.CreateTokenInput{Roles: req.GetRoles(), Description: req.GetDescription(), OrgID: req.GetOrgId()}
	if req.TokenExpiry != nil {
		if err := req.TokenExpiry.CheckValid(); err != nil {
			return nil, s.fail(ctx, broker.Invalid("tokenExpiry: %v", err))
		}
		in.Expiry = req.TokenExpiry.AsTime()
	}
	t, err := s.b.CreateToken(ctx, broker.PrincipalFrom(ctx), in)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return createResponse(t), nil
}

func createResponse(t broker.IssuedToken) *tbv1.CreateTokenResponse {
	return &tbv1.CreateTokenResponse{
		ClientId:    t.ClientID,
		Secret:      t.Secret,
		OrgId:       t.OrgID,
		Roles:       t.Roles,
		Token:       t.Bearer,
		GeneratedOn: timestamppb.New(t.GeneratedOn),
		Description: t.Description,
		TokenExpiry: optionalTime(t.Expiry),
	}
}

// ListTokens answers one page (the rule of server/paging): without
// page_size, the default page. Over REST, a request without paging
// parameters is answered with every token by the gateway, page by page.
func (s *Service) ListTokens(ctx context.Context, req *tbv1.ListTokensRequest) (*tbv1.ListTokensResponse, error) {
	f := broker.TokenFilter{UnusedFor: req.GetUnusedFor(), Role: req.GetRole()}
	size, err := paging.Size(req.GetPageSize())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	after, err := DecodePageToken(req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	tokens, next, err := s.b.ListTokensPage(ctx, f, after, size)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	infos := s.tokenInfos(tokens)
	if n := paging.Fit(infos); n < len(infos) {
		infos, next = infos[:n], tokens[n-1].ClientID
	}
	return &tbv1.ListTokensResponse{Clients: infos, NextPageToken: EncodePageToken(next)}, nil
}

// pageKind tags the token list's page tokens.
const pageKind = "c1"

// EncodePageToken makes the opaque page token that continues after a
// client ID ("" for none).
func EncodePageToken(after string) string { return paging.Encode(pageKind, []byte(after)) }

// DecodePageToken returns the client ID a page token continues after.
func DecodePageToken(tok string) (string, error) {
	b, err := paging.Decode(pageKind, tok)
	if err != nil || (b != nil && !credential.ValidClientID(string(b))) {
		return "", paging.Invalid()
	}
	return string(b), nil
}

func (s *Service) tokenInfos(tokens []store.Token) []*tbv1.TokenInfo {
	now := s.b.Now()
	out := make([]*tbv1.TokenInfo, 0, len(tokens))
	for _, t := range tokens {
		info := &tbv1.TokenInfo{
			ClientId:    t.ClientID,
			Roles:       t.Roles,
			GeneratedOn: timestamppb.New(t.GeneratedOn),
			Description: t.Description,
			TokenExpiry: optionalTime(t.Expiry),
			LastUsedOn:  optionalTime(t.LastUsed),
			State:       broker.TokenState(t, now),
		}
		if t.RotatedTo != "" { // absent for tokens never rotated
			info.RotatedTo, info.RotatedOn = &t.RotatedTo, optionalTime(t.RotatedAt)
		}
		out = append(out, info)
	}
	return out
}

func (s *Service) RotateToken(ctx context.Context, req *tbv1.RotateTokenRequest) (*tbv1.RotateTokenResponse, error) {
	r, err := s.b.RotateToken(ctx, broker.PrincipalFrom(ctx), req.GetClientId(), req.GetGracePeriod())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.RotateTokenResponse{
		Token:            createResponse(r.New),
		PreviousClientId: r.Old.ClientID,
		PreviousExpiry:   optionalTime(r.Old.Expiry),
	}, nil
}

// RevokeTokens answers the count of the tokens revoked and the first of
// them, as a list page is bounded (server/paging: at most MaxPageSize, cut
// at MaxPageBytes): a revocation has no size limit, and an answer listing
// every token would exceed a gRPC client's 4 MiB receive limit from about
// 35,000 single-role tokens on, after the store had revoked them all.
// The full record of what went is the audit log (an event per token).
func (s *Service) RevokeTokens(ctx context.Context, req *tbv1.RevokeTokensRequest) (*tbv1.RevokeTokensResponse, error) {
	f := broker.TokenFilter{UnusedFor: req.GetUnusedFor(), Role: req.GetRole()}
	tokens, err := s.b.RevokeTokens(ctx, broker.PrincipalFrom(ctx), f, req.GetDryRun())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	infos := s.tokenInfos(tokens[:min(len(tokens), paging.MaxPageSize)])
	infos = infos[:paging.Fit(infos)]
	return &tbv1.RevokeTokensResponse{
		Clients:          infos,
		DryRun:           req.GetDryRun(),
		RevokedCount:     int32(min(len(tokens), math.MaxInt32)),
		ClientsTruncated: len(infos) < len(tokens),
	}, nil
}

func (s *Service) GetTokenPolicy(_ context.Context, _ *tbv1.GetTokenPolicyRequest) (*tbv1.GetTokenPolicyResponse, error) {
	return &tbv1.GetTokenPolicyResponse{Policy: policyToProto(s.b.TokenPolicy())}, nil
}

func (s *Service) UpdateTokenPolicy(ctx context.Context, req *tbv1.UpdateTokenPolicyRequest) (*tbv1.UpdateTokenPolicyResponse, error) {
	p, err := s.b.UpdateTokenPolicy(ctx, broker.PrincipalFrom(ctx), req.GetMaxTokenLifetime(), req.GetMaxPulsarTokenLifetime())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.UpdateTokenPolicyResponse{Policy: policyToProto(p)}, nil
}

func policyToProto(p store.TokenPolicy) *tbv1.TokenPolicy {
	return &tbv1.TokenPolicy{
		MaxTokenLifetime:       broker.FormatLifetime(p.MaxTokenLifetime),
		MaxPulsarTokenLifetime: broker.FormatLifetime(p.MaxPulsarTokenLifetime),
		UpdatedOn:              optionalTime(p.UpdatedAt),
		UpdatedBy:              p.UpdatedBy,
	}
}

func (s *Service) DeleteToken(ctx context.Context, req *tbv1.DeleteTokenRequest) (*tbv1.DeleteTokenResponse, error) {
	if err := s.b.DeleteToken(ctx, broker.PrincipalFrom(ctx), req.GetClientId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusOK, true)
	return &tbv1.DeleteTokenResponse{}, nil
}

// ListRoles answers one page of roles in ID order (the rule of
// server/paging); over REST, a request without paging parameters is
// answered with every role by the gateway, page by page.
func (s *Service) ListRoles(ctx context.Context, req *tbv1.ListRolesRequest) (*tbv1.ListRolesResponse, error) {
	roles, next, err := paging.ByKey[store.Role, *tbv1.Role]{
		Kind: rolePageKind,
		Read: func(after string, limit int) ([]store.Role, string, error) {
			return s.b.ListRolesPage(ctx, after, limit)
		},
		Key:  func(r store.Role) string { return r.ID },
		Item: roleToProto,
	}.Page(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.ListRolesResponse{Roles: roles, NextPageToken: next}, nil
}

// rolePageKind tags the role list's page tokens (they hold a role ID).
const rolePageKind = "r1"

func (s *Service) CreateRole(ctx context.Context, req *tbv1.CreateRoleRequest) (*tbv1.CreateRoleResponse, error) {
	r, err := s.b.CreateRole(ctx, broker.PrincipalFrom(ctx), specFromProto(req.GetName(), req.GetPolicy()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusCreated, false)
	return &tbv1.CreateRoleResponse{Role: roleToProto(r)}, nil
}

func (s *Service) GetRole(ctx context.Context, req *tbv1.GetRoleRequest) (*tbv1.GetRoleResponse, error) {
	r, err := s.b.GetRole(ctx, req.GetRoleId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.GetRoleResponse{Role: roleToProto(r)}, nil
}

func (s *Service) UpdateRole(ctx context.Context, req *tbv1.UpdateRoleRequest) (*tbv1.UpdateRoleResponse, error) {
	r, err := s.b.UpdateRole(ctx, broker.PrincipalFrom(ctx), req.GetRoleId(), specFromProto(req.GetName(), req.GetPolicy()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.UpdateRoleResponse{Role: roleToProto(r)}, nil
}

func (s *Service) DeleteRole(ctx context.Context, req *tbv1.DeleteRoleRequest) (*tbv1.DeleteRoleResponse, error) {
	if err := s.b.DeleteRole(ctx, broker.PrincipalFrom(ctx), req.GetRoleId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusNoContent, true)
	return &tbv1.DeleteRoleResponse{}, nil
}

func (s *Service) GetCurrentOrg(_ context.Context, _ *tbv1.GetCurrentOrgRequest) (*tbv1.GetCurrentOrgResponse, error) {
	org := s.b.Org()
	return &tbv1.GetCurrentOrgResponse{Id: org.ID, Name: org.Name}, nil
}

func specFromProto(name string, p *tbv1.Policy) broker.RoleSpec {
	return broker.RoleSpec{
		Name:        name,
		Description: p.GetDescription(),
		Resources:   p.GetResources(),
		Actions:     p.GetActions(),
		Effect:      p.GetEffect(),
	}
}

func roleToProto(r store.Role) *tbv1.Role {
	out := &tbv1.Role{
		Id:   r.ID,
		Name: r.Name,
		Policy: &tbv1.Policy{
			Description: r.Description,
			Resources:   r.Resources,
			Actions:     r.Actions,
			Effect:      r.Effect,
		},
		OrgId: r.OrgID,
		Type:  "custom",
	}
	if r.Builtin {
		out.Type = "default"
	} else {
		out.LastUpdateDateTime = r.UpdatedAt.UTC().Format(time.RFC3339Nano)
		out.LastUpdateUserId = r.UpdatedBy
	}
	return out
}

func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
