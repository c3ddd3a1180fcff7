package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestChunker: writes of any size come out as ChunkSize messages (the
// last one shorter) that concatenate to the input, hashed as sent.
func TestChunker(t *testing.T) {
	var msgs [][]byte
	c := &chunker{
		send: func(m *tbv1.BackupResponse) error {
			msgs = append(msgs, bytes.Clone(m.GetChunk()))
			return nil
		},
		buf: make([]byte, 0, ChunkSize), sum: sha256.New(),
	}
	in := make([]byte, 2*ChunkSize+12345)
	for i := range in {
		in[i] = byte(i * 7)
	}
	for off, step := 0, 1; off < len(in); step = step*3 + 1 { // uneven writes
		end := min(off+step, len(in))
		if n, err := c.Write(in[off:end]); err != nil || n != end-off {
			t.Fatalf("Write = %d, %v", n, err)
		}
		off = end
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || len(msgs[0]) != ChunkSize || len(msgs[1]) != ChunkSize || len(msgs[2]) != 12345 {
		t.Fatalf("chunk sizes: %d messages", len(msgs))
	}
	if !bytes.Equal(bytes.Join(msgs, nil), in) {
		t.Fatal("chunks do not concatenate to the input")
	}
	want := sha256.Sum256(in)
	if !bytes.Equal(c.sum.Sum(nil), want[:]) {
		t.Fatal("checksum differs")
	}
}

// serve starts the service alone on a loopback listener (authorization is
// the server's interceptor's job, tested with the rules).
func serve(t *testing.T, st store.Store) tbv1.AdminServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	New(Config{Store: st, OrgID: "org-1", Logger: slog.New(slog.DiscardHandler)}).Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return tbv1.NewAdminServiceClient(conn)
}

func TestBackupStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "live.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	stream, err := serve(t, st).Backup(ctx, &tbv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		data    []byte
		header  *tbv1.BackupHeader
		trailer *tbv1.BackupTrailer
	)
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.GetHeader() != nil:
			if header != nil || data != nil {
				t.Fatal("header is not the first message, or repeated")
			}
			header = m.GetHeader()
		case m.GetTrailer() != nil:
			trailer = m.GetTrailer()
		default:
			if trailer != nil {
				t.Fatal("chunk after the trailer")
			}
			data = append(data, m.GetChunk()...)
		}
	}
	if header.GetOrgId() != "org-1" || header.GetFormat() != FormatBolt || header.GetStartedAt() == nil {
		t.Fatalf("header = %v", header)
	}
	sum := sha256.Sum256(data)
	if trailer.GetSize() != int64(len(data)) || !bytes.Equal(trailer.GetSha256(), sum[:]) {
		t.Fatalf("trailer %d bytes %x; received %d bytes %x", trailer.GetSize(), trailer.GetSha256(), len(data), sum)
	}
	// The snapshot is a working database holding what was written.
	path := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if _, err := cp.GetRole(ctx, storetest.RoleID(1)); err != nil {
		t.Fatalf("role missing from the snapshot: %v", err)
	}
}

// noSnapshots hides the bolt store's Snapshot method, as a backend
// without online backup (etcd) has none.
type noSnapshots struct{ store.Store }

func TestBackupUnsupportedBackend(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "live.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stream, err := serve(t, noSnapshots{st}).Backup(context.Background(), &tbv1.BackupRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("Backup on a backend without snapshots: %v, want Unimplemented", err)
	}
}
