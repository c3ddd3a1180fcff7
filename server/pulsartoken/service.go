// Package pulsartoken implements the gRPC PulsarTokenService: streaming
// tenants, the Pulsar JWTs issued for them, and their verification keys.
// Handlers are thin; every error goes through rpcerr.ToStatus.
package pulsartoken

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/callctx"
	"github.com/tokenbroker/tokenbroker/server/gateway"
	"github.com/tokenbroker/tokenbroker/server/paging"
	"github.com/tokenbroker/tokenbroker/server/pulsarjwt"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
	"github.com/tokenbroker/tokenbroker/store"
)

// Config holds the service's dependencies.
type Config struct {
	Broker *broker.Broker
	Logger *slog.Logger
}

// Service implements tbv1.PulsarTokenServiceServer.
type Service struct {
	tbv1.UnsafePulsarTokenServiceServer // adding an RPC breaks the build until implemented
	b                                   *broker.Broker
	log                                 *slog.Logger
}

// New returns the service.
func New(cfg Config) *Service { return &Service{b: cfg.Broker, log: cfg.Logger} }

// Register adds the service to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { tbv1.RegisterPulsarTokenServiceServer(r, s) }

func (s *Service) fail(ctx context.Context, err error) error { return rpcerr.ToStatus(ctx, s.log, err) }

func (s *Service) CreateTenant(ctx context.Context, req *tbv1.CreateTenantRequest) (*tbv1.CreateTenantResponse, error) {
	t, tok, err := s.b.CreateTenant(ctx, broker.PrincipalFrom(ctx), broker.TenantInput{
		Name: req.GetTenantName(), Cluster: req.GetClusterName(), ClusterHeader: callctx.PulsarCluster(ctx),
		WebServiceURL: req.GetWebServiceUrl(), BrokerServiceURL: req.GetBrokerServiceUrl(), WebsocketURL: req.GetWebsocketUrl(),
		CloudProvider: req.GetCloudProvider(), CloudRegion: req.GetCloudRegion(), TokenFormat: req.GetTokenFormat(),
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := tenantToProto(t)
	out.PulsarToken = tok.JWT
	return &tbv1.CreateTenantResponse{Tenant: out}, nil
}

// ListTenants answers one page of tenants in name order (the rule of
// server/paging); over REST, a request without paging parameters is
// answered with every tenant by the gateway, page by page.
func (s *Service) ListTenants(ctx context.Context, req *tbv1.ListTenantsRequest) (*tbv1.ListTenantsResponse, error) {
	tenants, next, err := paging.ByKey[store.Tenant, *tbv1.Tenant]{
		Kind: tenantPageKind,
		Read: func(after string, limit int) ([]store.Tenant, string, error) {
			return s.b.ListTenantsPage(ctx, after, limit)
		},
		Key:  func(t store.Tenant) string { return t.Name },
		Item: tenantToProto,
	}.Page(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.ListTenantsResponse{Tenants: tenants, NextPageToken: next}, nil
}

// Page token kinds: the tenant list's hold a tenant name, the namespace
// statistics' a namespace name.
const (
	tenantPageKind    = "t1"
	namespacePageKind = "n1"
)

func (s *Service) GetTenant(ctx context.Context, req *tbv1.GetTenantRequest) (*tbv1.GetTenantResponse, error) {
	t, err := s.b.GetTenant(ctx, req.GetTenant(), callctx.PulsarCluster(ctx))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.GetTenantResponse{Tenant: tenantToProto(t)}, nil
}

func (s *Service) DeleteTenant(ctx context.Context, req *tbv1.DeleteTenantRequest) (*tbv1.DeleteTenantResponse, error) {
	cluster := req.GetCluster()
	if cluster == "" {
		cluster = callctx.PulsarCluster(ctx)
	}
	if err := s.b.DeleteTenant(ctx, broker.PrincipalFrom(ctx), req.GetTenant(), cluster); err != nil {
		return nil, s.fail(ctx, err)
	}
	code := http.StatusOK
	if req.GetCluster() != "" {
		code = http.StatusAccepted // Astra's DELETE /v2/streaming/tenants/{tenant}/clusters/{cluster}
	}
	gateway.SetHTTPStatus(ctx, code, true)
	return &tbv1.DeleteTenantResponse{}, nil
}

func (s *Service) CreatePulsarToken(ctx context.Context, req *tbv1.CreatePulsarTokenRequest) (*tbv1.CreatePulsarTokenResponse, error) {
	tok, err := s.b.CreatePulsarToken(ctx, broker.PrincipalFrom(ctx), broker.PulsarTokenInput{
		Tenant: req.GetTenant(), Cluster: callctx.PulsarCluster(ctx),
		Exp: req.GetExp(), Role: req.GetRole(), Type: req.GetType(),
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusCreated, false)
	return &tbv1.CreatePulsarTokenResponse{Id: tok.ID, Rolename: tok.Role, Subject: tok.Role, Token: tok.JWT}, nil
}

// ListPulsarTokens answers one page of a tenant's tokens in (IssuedAt, ID)
// order (the rule of server/paging); over REST, a request without paging
// parameters is answered with every token by the gateway, page by page.
func (s *Service) ListPulsarTokens(ctx context.Context, req *tbv1.ListPulsarTokensRequest) (*tbv1.ListPulsarTokensResponse, error) {
	size, err := paging.Size(req.GetPageSize())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	after, err := decodeTokenPosition(req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	toks, next, err := s.b.ListPulsarTokensPage(ctx, req.GetTenant(), callctx.PulsarCluster(ctx), after, size)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &tbv1.ListPulsarTokensResponse{Tokens: make([]*structpb.Struct, 0, len(toks))}
	for _, t := range toks {
		claims, err := s.claims(t)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		out.Tokens = append(out.Tokens, claims)
	}
	if n := paging.Fit(out.Tokens); n < len(out.Tokens) {
		out.Tokens, next = out.Tokens[:n], toks[n-1].Position()
	}
	out.NextPageToken = encodeTokenPosition(next)
	return out, nil
}

// tokenPageKind tags the Pulsar token list's page tokens: IssuedAt (Unix
// nanoseconds, 8 bytes big-endian) then the token ID.
const tokenPageKind = "p1"

func encodeTokenPosition(p store.PulsarTokenPosition) string {
	if p.IsZero() {
		return ""
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(p.IssuedAt.UnixNano()))
	return paging.Encode(tokenPageKind, append(b, p.ID...))
}

func decodeTokenPosition(tok string) (store.PulsarTokenPosition, error) {
	b, err := paging.Decode(tokenPageKind, tok)
	switch {
	case err != nil:
		return store.PulsarTokenPosition{}, err
	case b == nil:
		return store.PulsarTokenPosition{}, nil
	case len(b) <= 8 || !utf8.Valid(b[8:]):
		return store.PulsarTokenPosition{}, paging.Invalid()
	}
	return store.PulsarTokenPosition{
		IssuedAt: time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))).UTC(),
		ID:       string(b[8:]),
	}, nil
}

func (s *Service) GetPulsarToken(ctx context.Context, req *tbv1.GetPulsarTokenRequest) (*tbv1.GetPulsarTokenResponse, error) {
	t, err := s.b.GetPulsarToken(ctx, req.GetTenant(), callctx.PulsarCluster(ctx), req.GetTokenId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	claims, err := s.claims(t)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.GetPulsarTokenResponse{Claims: claims}, nil
}

func (s *Service) DeletePulsarToken(ctx context.Context, req *tbv1.DeletePulsarTokenRequest) (*tbv1.DeletePulsarTokenResponse, error) {
	if err := s.b.DeletePulsarToken(ctx, broker.PrincipalFrom(ctx), req.GetTenant(), callctx.PulsarCluster(ctx), req.GetTokenId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusOK, true)
	return &tbv1.DeletePulsarTokenResponse{}, nil
}

func (s *Service) GetTenantTokenKeys(ctx context.Context, req *tbv1.GetTenantTokenKeysRequest) (*tbv1.GetTenantTokenKeysResponse, error) {
	k, err := s.b.TenantTokenKeys(ctx, req.GetTenant(), callctx.PulsarCluster(ctx))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &tbv1.GetTenantTokenKeysResponse{TokenFormat: k.Format, Issuer: s.b.Issuer(), Audience: s.b.Audience()}
	if k.Format == broker.FormatHS256 {
		out.TokenSecretKey = pulsarjwt.DataURL(k.Secret)
		if k.PreviousSecret != nil {
			out.PreviousTokenSecretKey = pulsarjwt.DataURL(k.PreviousSecret)
			out.PreviousSecretRetiresOn = timestamppb.New(k.PreviousSecretRetiresAt)
		}
	} else {
		out.Kid = k.Kid
		out.TokenPublicKey = pulsarjwt.DataURL(k.PublicDER)
		out.PublicKeyPem = pulsarjwt.PublicPEM(k.PublicDER)
		out.PublicKeyDer = base64.StdEncoding.EncodeToString(k.PublicDER)
		out.TokenPublicAlg = "RS256"
		if k.NextKid != "" {
			out.NextKid = k.NextKid
			out.NextTokenPublicKey = pulsarjwt.DataURL(k.NextPublicDER)
			out.NextPublicKeyPem = pulsarjwt.PublicPEM(k.NextPublicDER)
		}
	}
	return out, nil
}

func (s *Service) RotateSigningKey(ctx context.Context, req *tbv1.RotateSigningKeyRequest) (*tbv1.RotateSigningKeyResponse, error) {
	r, err := s.b.RotateSigningKey(ctx, broker.PrincipalFrom(ctx), req.GetPhase())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.RotateSigningKeyResponse{Kid: r.Kid, PreviousKid: r.Previous, State: r.State}, nil
}

func (s *Service) RotateTenantSecret(ctx context.Context, req *tbv1.RotateTenantSecretRequest) (*tbv1.RotateTenantSecretResponse, error) {
	t, secret, err := s.b.RotateTenantSecret(ctx, broker.PrincipalFrom(ctx), req.GetTenant(), callctx.PulsarCluster(ctx), req.GetOverlap())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &tbv1.RotateTenantSecretResponse{TokenSecretKey: pulsarjwt.DataURL(secret)}
	if !t.PreviousSecretRetiresAt.IsZero() {
		out.PreviousSecretRetiresOn = timestamppb.New(t.PreviousSecretRetiresAt)
	}
	return out, nil
}

func (s *Service) ReportNamespaceStats(ctx context.Context, req *tbv1.ReportNamespaceStatsRequest) (*tbv1.ReportNamespaceStatsResponse, error) {
	stats := make([]store.NamespaceStats, 0, len(req.GetStats()))
	for _, in := range req.GetStats() {
		stats = append(stats, store.NamespaceStats{
			Tenant: in.GetTenant(), Namespace: in.GetNamespace(),
			MessagesIn: in.GetMessagesIn(), MessagesOut: in.GetMessagesOut(), BytesIn: in.GetBytesIn(), BytesOut: in.GetBytesOut(),
			MsgRateIn: in.GetMsgRateIn(), MsgRateOut: in.GetMsgRateOut(), ThroughputIn: in.GetThroughputIn(), ThroughputOut: in.GetThroughputOut(),
			Subscriptions: in.GetSubscriptions(), Producers: in.GetProducers(), Consumers: in.GetConsumers(),
			SubscriptionDelayed: in.GetSubscriptionDelayed(), StorageSize: in.GetStorageSize(),
			BacklogBytes: in.GetBacklogBytes(), BacklogMessages: in.GetBacklogMessages(),
		})
	}
	if err := s.b.ReportNamespaceStats(ctx, broker.PrincipalFrom(ctx), stats); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.ReportNamespaceStatsResponse{}, nil
}

// GetNamespaceStats answers one page of a tenant's namespaces in
// namespace order (the rule of server/paging), or the one namespace asked
// for; over REST, a request without paging parameters is answered with
// every namespace by the gateway, page by page.
func (s *Service) GetNamespaceStats(ctx context.Context, req *tbv1.GetNamespaceStatsRequest) (*tbv1.GetNamespaceStatsResponse, error) {
	usages, next, err := paging.ByKey[store.NamespaceStats, *tbv1.NamespaceUsage]{
		Kind: namespacePageKind,
		Read: func(after string, limit int) ([]store.NamespaceStats, string, error) {
			return s.b.NamespaceStats(ctx, callctx.Credential(ctx), req.GetTenant(), req.GetNamespace(), after, limit)
		},
		Key:  func(st store.NamespaceStats) string { return st.Namespace },
		Item: namespaceUsage,
		// A map entry carries its key ("tenant/namespace", the name) too.
		Size: func(u *tbv1.NamespaceUsage) int { return proto.Size(u) + len(u.GetName()) + 8 },
	}.Page(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &tbv1.GetNamespaceStatsResponse{Namespaces: make(map[string]*tbv1.NamespaceUsage, len(usages)), NextPageToken: next}
	for _, u := range usages {
		out.Namespaces[u.GetName()] = u
	}
	return out, nil
}

func namespaceUsage(st store.NamespaceStats) *tbv1.NamespaceUsage {
	name := st.Tenant + "/" + st.Namespace
	return &tbv1.NamespaceUsage{
		Name:            name,
		TotalMessagesIn: float64(st.MessagesIn), TotalMessagesOut: float64(st.MessagesOut),
		TotalBytesIn: float64(st.BytesIn), TotalBytesOut: float64(st.BytesOut),
		MsgRateIn: st.MsgRateIn, MsgRateOut: st.MsgRateOut, ThroughputIn: st.ThroughputIn, ThroughputOut: st.ThroughputOut,
		SubscriptionCount: float64(st.Subscriptions), ProducerCount: float64(st.Producers), ConsumerCount: float64(st.Consumers),
		SubscriptionDelayed: float64(st.SubscriptionDelayed), StorageSize: float64(st.StorageSize),
		BacklogStorageByteSize: float64(st.BacklogBytes), MsgBacklogNumber: float64(st.BacklogMessages),
		UpdatedAt: st.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
}

func (s *Service) claims(t store.PulsarToken) (*structpb.Struct, error) {
	return structpb.NewStruct(s.b.PulsarClaims(t))
}

func tenantToProto(t store.Tenant) *tbv1.Tenant {
	return &tbv1.Tenant{
		Id: t.Name, TenantName: t.Name, ClusterName: t.ClusterName,
		WebServiceUrl: t.WebServiceURL, BrokerServiceUrl: t.BrokerServiceURL, WebsocketUrl: t.WebsocketURL,
		CloudProvider: t.CloudProvider, CloudRegion: t.CloudRegion,
		AstraOrgGuid: t.OrgID, Status: "active", TokenFormat: t.TokenFormat,
	}
}
