// Package auth implements the gRPC AuthService: Stargate-compatible login
// for authorization tokens, their revocation, database users, and Check.
// Handlers are thin: they check the request's shape (with Stargate's exact
// messages on the login calls), call the broker and convert the result;
// every error goes through rpcerr.ToStatus.
package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/callctx"
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

// Service implements tbv1.AuthServiceServer.
type Service struct {
	tbv1.UnsafeAuthServiceServer // adding an RPC breaks the build until implemented
	b                            *broker.Broker
	log                          *slog.Logger
}

// New returns the service.
func New(cfg Config) *Service { return &Service{b: cfg.Broker, log: cfg.Logger} }

// Register adds the service to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { tbv1.RegisterAuthServiceServer(r, s) }

func (s *Service) fail(ctx context.Context, err error) error { return rpcerr.ToStatus(ctx, s.log, err) }

// refusedLogin is Stargate's 401 text, the same for an unknown user and a
// wrong password.
func refusedLogin(username string) string {
	return fmt.Sprintf("Failed to create token: Provided username %s and/or password are incorrect", username)
}

func (s *Service) CreateAuthToken(ctx context.Context, req *tbv1.CreateAuthTokenRequest) (*tbv1.CreateAuthTokenResponse, error) {
	// Stargate checks in this order and answers the first failure.
	if req.GetUsername() == "" {
		return nil, s.fail(ctx, broker.Invalid("Must provide username in request"))
	}
	if req.GetPassword() == "" {
		return nil, s.fail(ctx, broker.Invalid("Must provide password in request"))
	}
	tok, err := s.login(ctx, req.GetUsername(), req.GetPassword())
	if err != nil {
		return nil, err
	}
	return &tbv1.CreateAuthTokenResponse{AuthToken: tok}, nil
}

func (s *Service) GenerateAuthToken(ctx context.Context, req *tbv1.GenerateAuthTokenRequest) (*tbv1.GenerateAuthTokenResponse, error) {
	if req.GetKey() == "" {
		return nil, s.fail(ctx, broker.Invalid("Must provide key in request"))
	}
	if req.GetSecret() == "" {
		return nil, s.fail(ctx, broker.Invalid("Must provide secret in request"))
	}
	tok, err := s.login(ctx, req.GetKey(), req.GetSecret())
	if err != nil {
		return nil, err
	}
	return &tbv1.GenerateAuthTokenResponse{AuthToken: tok}, nil
}

func (s *Service) login(ctx context.Context, username, pw string) (string, error) {
	tok, err := s.b.Login(ctx, broker.LoginInput{
		Username: username, Password: pw,
		ClientAddr: callctx.ClientAddr(ctx),
		Refused:    refusedLogin(username),
	})
	if err != nil {
		return "", s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusCreated, false)
	gateway.SetHTTPHeader(ctx, "Cache-Control", cacheControl(s.b.AuthTokenTTL()))
	return tok, nil
}

// cacheControl is Stargate's header on a new token: it may be cached until
// shortly before the token would expire if unused.
func cacheControl(ttl time.Duration) string {
	secs := int(ttl / time.Second)
	if secs > 100 {
		secs -= 10
	} else {
		secs--
	}
	if secs < 0 {
		secs = 0
	}
	return fmt.Sprintf("no-transform, max-age=%d, s-maxage=%d", secs, secs)
}

func (s *Service) RevokeAuthToken(ctx context.Context, _ *tbv1.RevokeAuthTokenRequest) (*tbv1.RevokeAuthTokenResponse, error) {
	if err := s.b.RevokeAuthToken(ctx, broker.PrincipalFrom(ctx)); err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusNoContent, true)
	return &tbv1.RevokeAuthTokenResponse{}, nil
}

func (s *Service) Check(ctx context.Context, req *tbv1.CheckRequest) (*tbv1.CheckResponse, error) {
	cred := req.GetCredential()
	if cred == "" {
		cred = callctx.Credential(ctx)
	}
	res, err := s.b.Check(ctx, cred, req.GetAction(), req.GetResource(), callctx.ClientAddr(ctx))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &tbv1.CheckResponse{Allowed: res.Allowed, Reason: res.Reason}
	if p := res.Principal; p != nil {
		out.Principal = &tbv1.Principal{Kind: p.Kind, Id: p.ID, OrgId: p.OrgID, Roles: p.Roles, CredentialType: p.Credential}
	}
	return out, nil
}

func (s *Service) CreateUser(ctx context.Context, req *tbv1.CreateUserRequest) (*tbv1.CreateUserResponse, error) {
	u, err := s.b.CreateUser(ctx, broker.PrincipalFrom(ctx), req.GetUsername(), req.GetPassword(), req.GetRoles())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusCreated, false)
	return &tbv1.CreateUserResponse{User: s.userToProto(u)}, nil
}

// ListUsers answers one page of users in username order (the rule of
// server/paging); over REST, a request without paging parameters is
// answered with every user by the gateway, page by page.
func (s *Service) ListUsers(ctx context.Context, req *tbv1.ListUsersRequest) (*tbv1.ListUsersResponse, error) {
	users, next, err := paging.ByKey[store.User, *tbv1.User]{
		Kind: userPageKind,
		Read: func(after string, limit int) ([]store.User, string, error) {
			return s.b.ListUsersPage(ctx, after, limit)
		},
		Key:  func(u store.User) string { return u.Username },
		Item: s.userToProto,
	}.Page(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	org := s.b.Org()
	return &tbv1.ListUsersResponse{OrgId: org.ID, OrgName: org.Name, Users: users, NextPageToken: next}, nil
}

// userPageKind tags the user list's page tokens (they hold a username).
const userPageKind = "u1"

func (s *Service) GetUser(ctx context.Context, req *tbv1.GetUserRequest) (*tbv1.GetUserResponse, error) {
	u, err := s.b.GetUser(ctx, req.GetUserId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.GetUserResponse{User: s.userToProto(u)}, nil
}

func (s *Service) DeleteUser(ctx context.Context, req *tbv1.DeleteUserRequest) (*tbv1.DeleteUserResponse, error) {
	if err := s.b.DeleteUser(ctx, broker.PrincipalFrom(ctx), req.GetUserId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusNoContent, true)
	return &tbv1.DeleteUserResponse{}, nil
}

func (s *Service) ResetUserPassword(ctx context.Context, req *tbv1.ResetUserPasswordRequest) (*tbv1.ResetUserPasswordResponse, error) {
	if err := s.b.ResetUserPassword(ctx, broker.PrincipalFrom(ctx), req.GetUserId(), req.GetPassword()); err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusNoContent, true)
	return &tbv1.ResetUserPasswordResponse{}, nil
}

func (s *Service) userToProto(u store.User) *tbv1.User {
	out := &tbv1.User{
		UserId: u.ID, Username: u.Username, Status: "active",
		CreatedOn: timestamppb.New(u.CreatedAt),
	}
	for _, id := range u.Roles {
		out.Roles = append(out.Roles, &tbv1.UserRole{Id: id, Name: s.b.RoleName(id)})
	}
	return out
}
