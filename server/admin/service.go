// Package admin implements the gRPC AdminService: operator calls on the
// broker itself (online backup). Handlers are thin; errors go through
// rpcerr.ToStatus.
package admin

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/rpcerr"
	"github.com/tokenbroker/tokenbroker/store"
)

// ChunkSize is the most snapshot bytes one BackupResponse carries: well
// under gRPC's default 4 MiB message limit, large enough that framing
// costs nothing.
const ChunkSize = 256 << 10

// FormatBolt names the snapshot format of the bbolt backend.
const FormatBolt = "bbolt"

// Config holds the service's dependencies.
type Config struct {
	// Store is the broker's store. Backup needs it to implement
	// store.Snapshotter; a backend that does not is backed up with its own
	// tooling, and Backup answers Unimplemented saying so.
	Store  store.Store
	OrgID  string
	Logger *slog.Logger
	Now    func() time.Time
}

// Service implements tbv1.AdminServiceServer.
type Service struct {
	tbv1.UnsafeAdminServiceServer // adding an RPC breaks the build until implemented
	st                            store.Store
	orgID                         string
	log                           *slog.Logger
	now                           func() time.Time
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{st: cfg.Store, orgID: cfg.OrgID, log: cfg.Logger, now: cfg.Now}
}

// Register adds the service to a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) { tbv1.RegisterAdminServiceServer(r, s) }

// Backup streams a snapshot (see the proto). The audit event is written
// before the first byte: a copy of every credential record is leaving, and
// that must be on record even if the stream then fails.
func (s *Service) Backup(_ *tbv1.BackupRequest, stream grpc.ServerStreamingServer[tbv1.BackupResponse]) error {
	ctx := stream.Context()
	snap, ok := s.st.(store.Snapshotter)
	if !ok {
		return status.Error(codes.Unimplemented, "this store backend has no online backup: use the backend's own snapshot tool (for etcd: etcdctl snapshot save)")
	}
	started := s.now().UTC()
	if ev := store.AuditFrom(ctx); ev != nil {
		rec := *ev
		rec.TargetKind, rec.TargetID, rec.Detail = "organization", s.orgID, "online backup started"
		if err := s.st.AppendAuditEvents(ctx, []store.AuditEvent{rec}); err != nil {
			return rpcerr.ToStatus(ctx, s.log, fmt.Errorf("record backup audit event: %w", err))
		}
	}
	if err := stream.Send(&tbv1.BackupResponse{Part: &tbv1.BackupResponse_Header{Header: &tbv1.BackupHeader{
		OrgId: s.orgID, Format: FormatBolt, StartedAt: timestamppb.New(started),
	}}}); err != nil {
		return err
	}
	w := &chunker{send: stream.Send, buf: make([]byte, 0, ChunkSize), sum: sha256.New()}
	n, err := snap.Snapshot(ctx, w)
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		// A client that went away ends the stream with the context's error
		// (Canceled), not Internal.
		return rpcerr.ToStatus(ctx, s.log, fmt.Errorf("backup: %w", err))
	}
	s.log.InfoContext(ctx, "online backup sent", "bytes", n)
	return stream.Send(&tbv1.BackupResponse{Part: &tbv1.BackupResponse_Trailer{Trailer: &tbv1.BackupTrailer{
		Size: n, Sha256: w.sum.Sum(nil),
	}}})
}

// chunker turns the snapshot's writes into messages of ChunkSize bytes and
// hashes what it sends.
type chunker struct {
	send func(*tbv1.BackupResponse) error
	buf  []byte
	sum  hash.Hash
}

func (c *chunker) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), ChunkSize-len(c.buf))
		c.buf = append(c.buf, p[:n]...)
		p = p[n:]
		written += n
		if len(c.buf) == ChunkSize {
			if err := c.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (c *chunker) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.sum.Write(c.buf)
	// Send serializes the message before returning, so buf can be reused.
	err := c.send(&tbv1.BackupResponse{Part: &tbv1.BackupResponse_Chunk{Chunk: c.buf}})
	c.buf = c.buf[:0]
	return err
}
