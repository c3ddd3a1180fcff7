package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
)

// Options configures Start.
type Options struct {
	// Replicas is the number of broker replicas (default 3).
	Replicas int
	// EtcdMembers is the size of the etcd cluster (default 3).
	EtcdMembers int
	// Config, if set, adjusts every replica's configuration (i is the
	// replica's index) before it starts. With Processes, only what the
	// command line carries applies (addresses, etcd, key file, issuer).
	Config func(i int, c *server.Config)
	// Processes runs every replica as a child process of the tokenbroker
	// binary (built by Start with go build), `serve --store etcd ...`,
	// instead of in process: Kill is then a real SIGKILL. Replica.Server
	// is nil for such replicas.
	Processes bool
	// Args adds command-line flags to replica i's process (Processes).
	Args func(i int) []string
}

// Cluster is an etcd cluster and broker replicas over it.
type Cluster struct {
	Etcd     *Etcd
	Replicas []*Replica
	// Admin is the bootstrap credential (an Organization Administrator's
	// application token); OrgID its organization.
	AdminToken string
	OrgID      string
	// Prefix is the installation's etcd key prefix (to open the store
	// beside the replicas and inspect it).
	Prefix string
}

// Replica is one broker: an in-process server with real listeners, or
// (Options.Processes) a child process of the tokenbroker binary.
type Replica struct {
	Index int
	cfg   server.Config
	mu    sync.Mutex
	srv   *server.Server
	conn  *grpc.ClientConn

	// Process mode: the binary, the replica's directory and bootstrap
	// file, extra flags, the running process and how often it started.
	bin, dir, bootstrapFile string
	extraArgs               []string
	proc                    *process
	starts                  int

	Tokens tbv1.TokenServiceClient
	Auth   tbv1.AuthServiceClient
	Pulsar tbv1.PulsarTokenServiceClient
	DB     tbv1.DatabaseServiceClient
	Audit  tbv1.AuditServiceClient
	Health healthpb.HealthClient
}

// Start starts the etcd cluster and the replicas (the first one
// bootstraps the installation; the others find it), all stopped when the
// test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Replicas <= 0 {
		opts.Replicas = 3
	}
	if opts.EtcdMembers <= 0 {
		opts.EtcdMembers = 3
	}
	c := &Cluster{Etcd: StartEtcd(t, opts.EtcdMembers)}
	dir := t.TempDir()
	bin := ""
	if opts.Processes {
		bin = buildBinary(t, dir)
	}
	keyFile := filepath.Join(dir, "master.key")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("/clustertest-%d-%d/", os.Getpid(), clusters.Add(1))
	c.Prefix = prefix
	// One issuer for the installation (the balancer's address in a real
	// deployment): a Pulsar JWT names its issuer, and every replica
	// accepts only its own, so replicas defaulting to their own addresses
	// would refuse each other's tokens.
	issuer := "http://" + freeAddr(t)
	for i := range opts.Replicas {
		grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
		cfg := server.Config{
			GRPCAddr: grpcAddr, HTTPAddr: httpAddr, IssuerURL: issuer,
			DataPath: filepath.Join(dir, fmt.Sprintf("unused-%d.db", i)), KeyFile: keyFile,
			Store:  server.StoreEtcd,
			Etcd:   server.EtcdConfig{Endpoints: c.Etcd.Endpoints(), Prefix: prefix},
			Logger: slog.New(slog.DiscardHandler), BootstrapOut: io.Discard,
		}
		if opts.Config != nil {
			opts.Config(i, &cfg)
		}
		r := &Replica{Index: i, cfg: cfg}
		if opts.Processes {
			r.bin, r.dir = bin, dir
			r.bootstrapFile = filepath.Join(dir, fmt.Sprintf("admin-%d.json", i))
			if opts.Args != nil {
				r.extraArgs = opts.Args(i)
			}
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		if i == 0 {
			if opts.Processes {
				tok, org, err := readBootstrap(r.bootstrapFile)
				if err != nil {
					t.Fatalf("the first replica did not bootstrap the installation: %v", err)
				}
				c.AdminToken, c.OrgID = tok, org
			} else {
				b := r.Server().Bootstrap()
				if b == nil {
					t.Fatal("the first replica did not bootstrap the installation")
				}
				c.AdminToken, c.OrgID = b.Token, b.OrgID
			}
		}
		c.Replicas = append(c.Replicas, r)
	}
	t.Cleanup(func() {
		for _, r := range c.Replicas {
			r.Stop()
		}
	})
	return c
}

// clusters numbers the clusters of one test binary, so that each has a
// prefix of its own.
var clusters atomic.Int64

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start starts (or restarts) the replica on its addresses.
func (r *Replica) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil || r.proc != nil {
		return fmt.Errorf("replica %d is running", r.Index)
	}
	if r.bin != "" {
		return r.startProcess(ctx)
	}
	srv, err := server.Start(ctx, r.cfg)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	r.srv = srv
	r.setClients(conn)
	return nil
}

func (r *Replica) setClients(conn *grpc.ClientConn) {
	r.conn = conn
	r.Tokens, r.Auth = tbv1.NewTokenServiceClient(conn), tbv1.NewAuthServiceClient(conn)
	r.Pulsar, r.DB, r.Audit = tbv1.NewPulsarTokenServiceClient(conn), tbv1.NewDatabaseServiceClient(conn), tbv1.NewAuditServiceClient(conn)
	r.Health = healthpb.NewHealthClient(conn)
}

// Stop shuts the replica down gracefully (it flushes what it holds in
// memory); a stopped replica can be started again.
func (r *Replica) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		r.stopProcess(syscall.SIGTERM)
		return
	}
	if r.srv == nil {
		return
	}
	_ = r.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	r.srv, r.conn = nil, nil
}

// Abort stops the replica without letting calls in flight finish: their
// connections are cut at once, so their callers get no answer (an
// in-process stand-in for killing the process mid-call; what a replica
// holds only in memory is lost in a real kill, which this does not show).
func (r *Replica) Abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		r.stopProcess(syscall.SIGKILL)
		return
	}
	if r.srv == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.srv.Shutdown(ctx)
	_ = r.conn.Close()
	r.srv, r.conn = nil, nil
}

// Kill SIGKILLs the replica's process (Options.Processes): no shutdown,
// no flush, connections reset by the kernel. It reports whether the
// process died of that signal. An in-process replica is aborted instead
// (false).
func (r *Replica) Kill() bool {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p == nil {
		r.Abort()
		return false
	}
	r.Abort()
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Process is the replica's process ID (0 unless it runs as a process).
func (r *Replica) Process() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.cmd.Process.Pid
}

// Server is the running server (nil when stopped, and for a replica
// running as a process).
func (r *Replica) Server() *server.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv
}

// RESTURL is the replica's REST base URL.
func (r *Replica) RESTURL() string { return "http://" + r.cfg.HTTPAddr }

// Ctx returns a context carrying bearer as the call's credential.
func Ctx(ctx context.Context, bearer string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer)
}
