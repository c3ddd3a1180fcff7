// Package database implements the gRPC DatabaseService: a registry of
// databases with a scoped token each, and their usage counters. Handlers
// are thin; every error goes through rpcerr.ToStatus.
package database

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/gateway"
	"github.com/tokenbroker/tokenbroker/server/paging"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
	"github.com/tokenbroker/tokenbroker/store"
)

// Config holds the service's dependencies.
type Config struct {
	Broker *broker.Broker
	Logger *slog.Logger
	// URLs builds the URL fields of database objects (none when zero).
	URLs URLTemplate
}

// Service implements tbv1.DatabaseServiceServer.
type Service struct {
	tbv1.UnsafeDatabaseServiceServer // adding an RPC breaks the build until implemented
	b                                *broker.Broker
	log                              *slog.Logger
	urls                             URLTemplate
}

// New returns the service.
func New(cfg Config) *Service { return &Service{b: cfg.Broker, log: cfg.Logger, urls: cfg.URLs} }

// Register adds the service to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { tbv1.RegisterDatabaseServiceServer(r, s) }

func (s *Service) fail(ctx context.Context, err error) error { return rpcerr.ToStatus(ctx, s.log, err) }

func (s *Service) CreateDatabase(ctx context.Context, req *tbv1.CreateDatabaseRequest) (*tbv1.CreateDatabaseResponse, error) {
	db, err := s.b.CreateDatabase(ctx, broker.PrincipalFrom(ctx), broker.DatabaseInput{
		Name: req.GetName(), Keyspace: req.GetKeyspace(), CloudProvider: req.GetCloudProvider(),
		Tier: req.GetTier(), Region: req.GetRegion(), CapacityUnits: int(req.GetCapacityUnits()), DBType: req.GetDbType(),
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusCreated, false)
	// The bare ID, as Astra sends it: its SDKs and the Terraform provider
	// take the header's value as the new database's ID.
	gateway.SetHTTPHeader(ctx, "Location", db.ID)
	return &tbv1.CreateDatabaseResponse{
		Id: db.ID, RoleId: db.RoleID, ClientId: db.Token.ClientID, Secret: db.Token.Secret, Token: db.Token.Bearer,
	}, nil
}

// ListDatabases answers Astra's page (limit, starting_after) or, beyond
// Astra, a page_size/page_token page; both in ID order, with
// next_page_token set when more may follow (the rule of server/paging).
func (s *Service) ListDatabases(ctx context.Context, req *tbv1.ListDatabasesRequest) (*tbv1.ListDatabasesResponse, error) {
	f := broker.DatabaseFilter{
		Include: req.GetInclude(), Provider: req.GetProvider(), StartingAfter: req.GetStartingAfter(),
		Limit: int(req.GetLimit()), LimitSet: req.Limit != nil,
	}
	if req.GetPageSize() != 0 || req.GetPageToken() != "" {
		size, err := paging.Size(req.GetPageSize())
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		after, err := paging.Decode(databasePageKind, req.GetPageToken())
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		f.Paged, f.PageSize, f.After = true, size, string(after)
	}
	dbs, next, err := s.b.ListDatabases(ctx, broker.PrincipalFrom(ctx), f)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &tbv1.ListDatabasesResponse{Databases: make([]*tbv1.Database, 0, len(dbs))}
	for _, db := range dbs {
		out.Databases = append(out.Databases, s.databaseToProto(db))
	}
	if n := paging.Fit(out.Databases); n < len(out.Databases) {
		out.Databases, next = out.Databases[:n], dbs[n-1].ID
	}
	out.NextPageToken = paging.Encode(databasePageKind, []byte(next))
	return out, nil
}

// databasePageKind tags the database list's page tokens (a database ID).
const databasePageKind = "d1"

func (s *Service) GetDatabase(ctx context.Context, req *tbv1.GetDatabaseRequest) (*tbv1.GetDatabaseResponse, error) {
	db, err := s.b.GetDatabase(ctx, req.GetDatabaseId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.GetDatabaseResponse{Database: s.databaseToProto(db)}, nil
}

func (s *Service) TerminateDatabase(ctx context.Context, req *tbv1.TerminateDatabaseRequest) (*tbv1.TerminateDatabaseResponse, error) {
	if err := s.b.TerminateDatabase(ctx, broker.PrincipalFrom(ctx), req.GetDatabaseId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	gateway.SetHTTPStatus(ctx, http.StatusAccepted, true)
	return &tbv1.TerminateDatabaseResponse{}, nil
}

func (s *Service) GetDatabaseUsage(ctx context.Context, req *tbv1.GetDatabaseUsageRequest) (*tbv1.GetDatabaseUsageResponse, error) {
	month, u, err := s.b.DatabaseUsage(ctx, req.GetDatabaseId(), req.GetMonth())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &tbv1.GetDatabaseUsageResponse{
		DatabaseId: req.GetDatabaseId(), Month: month,
		ReadRequestsCount: float64(u.Reads), WriteRequestsCount: float64(u.Writes), ErrorsCount: float64(u.Errors),
		LastUsageTime: optionalTime(u.LastUsage, time.RFC3339Nano),
	}, nil
}

// optionalTime is t in RFC 3339, or nil (the key is left out) when t is
// unknown: clients parse these keys as dates, and "" or the zero time
// would read as an invalid or a year-1 date.
func optionalTime(t time.Time, layout string) *string {
	if t.IsZero() {
		return nil
	}
	v := t.UTC().Format(layout)
	return &v
}

func (s *Service) databaseToProto(db store.Database) *tbv1.Database {
	actions := []string{}
	if db.Status == broker.DBActive {
		actions = []string{"terminate"}
	}
	created := db.CreatedAt.UTC().Format(time.RFC3339)
	// One datacenter: the broker registers one region per database.
	dc := &tbv1.Datacenter{
		Id: db.ID + "-1", Name: "dc-1", Tier: db.Tier, Status: db.Status,
		CloudProvider: db.CloudProvider, Region: db.Region, CapacityUnits: int32(db.CapacityUnits),
		DateCreated: created,
	}
	out := &tbv1.Database{
		Id: db.ID, OrgId: db.OrgID, OwnerId: db.OwnerID,
		CreationTime:    created,
		TerminationTime: optionalTime(db.TerminatedAt, time.RFC3339),
		LastUsageTime:   optionalTime(db.Usage.LastUsage, time.RFC3339Nano),
		Info: &tbv1.DatabaseInfo{
			Name: db.Name, Keyspace: db.Keyspace, Keyspaces: []string{db.Keyspace}, AdditionalKeyspaces: []string{},
			CloudProvider: db.CloudProvider, Tier: db.Tier, CapacityUnits: int32(db.CapacityUnits), Region: db.Region,
			Datacenters: []*tbv1.Datacenter{dc},
		},
		Status: db.Status,
		Metrics: &tbv1.DatabaseMetrics{
			ReadRequestsTotalCount:  float64(db.Usage.Reads),
			WriteRequestsTotalCount: float64(db.Usage.Writes),
			ErrorsTotalCount:        float64(db.Usage.Errors),
		},
		AvailableActions: actions,
		Storage:          &tbv1.DatabaseStorage{},
	}
	if db.DBType != "" {
		t := db.DBType
		out.DbType, out.Info.DbType = &t, &t
	}
	if u, ok := s.urls.urls(db.ID, db.Region); ok {
		out.CqlshUrl, out.GraphqlUrl, out.DataEndpointUrl = &u.cqlsh, &u.graphql, &u.dataEndpoint
		dc.CqlshUrl, dc.GraphqlUrl, dc.DataEndpointUrl = &u.cqlsh, &u.graphql, &u.dataEndpoint
	}
	return out
}
