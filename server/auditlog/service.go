// Package auditlog implements the gRPC AuditService: reading and following
// the audit log. Handlers are thin; every error goes through rpcerr.ToStatus.
package auditlog

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/paging"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
	"github.com/tokenbroker/tokenbroker/store"
)

// followPoll is how often FollowAuditEvents looks for new events.
const followPoll = 500 * time.Millisecond

// HeaderAfterSeq is the response header of FollowAuditEvents naming the
// sequence number the stream starts after (resolving afterSeq 0).
const HeaderAfterSeq = "x-audit-after-seq"

// Config holds the service's dependencies.
type Config struct {
	Broker *broker.Broker
	Logger *slog.Logger
}

// Service implements tbv1.AuditServiceServer.
type Service struct {
	tbv1.UnsafeAuditServiceServer // adding an RPC breaks the build until implemented
	b                             *broker.Broker
	log                           *slog.Logger
}

// New returns the service.
func New(cfg Config) *Service { return &Service{b: cfg.Broker, log: cfg.Logger} }

// Register adds the service to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { tbv1.RegisterAuditServiceServer(r, s) }

func (s *Service) ListAuditEvents(ctx context.Context, req *tbv1.ListAuditEventsRequest) (*tbv1.ListAuditEventsResponse, error) {
	var from, to time.Time
	if req.From != nil {
		from = req.From.AsTime()
	}
	if req.To != nil {
		to = req.To.AsTime()
	}
	events, next, err := s.b.ListAuditEvents(ctx, from, to, req.GetPageToken(), int(req.GetPageSize()))
	if err != nil {
		return nil, rpcerr.ToStatus(ctx, s.log, err)
	}
	out := &tbv1.ListAuditEventsResponse{Events: make([]*tbv1.AuditEvent, 0, len(events)), NextPageToken: next}
	for _, ev := range events {
		out.Events = append(out.Events, toProto(ev))
	}
	// An event may carry kilobytes: a full page of large ones is cut so
	// that the message stays far below grpc's receive limit.
	if n := paging.Fit(out.Events); n < len(out.Events) {
		out.Events, out.NextPageToken = out.Events[:n], broker.AuditPageToken(events[n-1].Seq)
	}
	return out, nil
}

func (s *Service) FollowAuditEvents(req *tbv1.FollowAuditEventsRequest, stream grpc.ServerStreamingServer[tbv1.FollowAuditEventsResponse]) error {
	ctx := stream.Context()
	started := func(after uint64) error {
		// The header tells the client where the stream begins: every event
		// with a larger seq will follow, none before.
		return stream.SendHeader(metadata.Pairs(HeaderAfterSeq, strconv.FormatUint(after, 10)))
	}
	err := s.b.FollowAuditEvents(ctx, req.GetAfterSeq(), followPoll, started, func(ev store.AuditEvent) error {
		return stream.Send(&tbv1.FollowAuditEventsResponse{Event: toProto(ev)})
	})
	if err != nil && ctx.Err() == nil {
		return rpcerr.ToStatus(ctx, s.log, err)
	}
	return nil
}

func toProto(ev store.AuditEvent) *tbv1.AuditEvent {
	return &tbv1.AuditEvent{
		Seq: ev.Seq, Time: timestamppb.New(ev.Time), RequestId: ev.RequestID,
		ActorKind: ev.ActorKind, ActorId: ev.ActorID, Action: ev.Action,
		TargetKind: ev.TargetKind, TargetId: ev.TargetID, Outcome: ev.Outcome, Detail: ev.Detail,
	}
}
