package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Replicas as child processes (Options.Processes): each replica is the
// real tokenbroker binary, `serve --store etcd ...`, so a test can SIGKILL
// it mid-write, as a machine or an OOM killer would, and start it again.
// What such a process held only in memory is then really lost, and
// nothing of it can survive through shared memory with the test.

// buildBinary builds cmd/tokenbroker (without -race: the in-process
// replicas are what the race detector watches; the binary is here to be
// killed). It builds into the user's cache directory rather than a fresh
// temporary one, so that a later run finds it up to date and go build
// skips the link, which otherwise costs seconds on every run.
func buildBinary(t testing.TB, dir string) string {
	t.Helper()
	if cache, err := os.UserCacheDir(); err == nil {
		if d := filepath.Join(cache, "tokenbroker-clustertest"); os.MkdirAll(d, 0o700) == nil {
			dir = d
		}
	}
	bin := filepath.Join(dir, "tokenbroker")
	began := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tokenbroker/tokenbroker/cmd/tokenbroker").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/tokenbroker: %v\n%s", err, out)
	}
	t.Logf("go build cmd/tokenbroker: %s", time.Since(began).Round(time.Millisecond))
	return bin
}

// process is a replica's child process, while it runs.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited (and been reaped)
	log  string
}

// procArgs is the command line of replica r.
func (r *Replica) procArgs() []string {
	c := r.cfg
	args := []string{"serve",
		"--store", "etcd", "--etcd-endpoints", strings.Join(c.Etcd.Endpoints, ","), "--etcd-prefix", c.Etcd.Prefix,
		"--key-file", c.KeyFile, "--data", c.DataPath, "--bootstrap-file", r.bootstrapFile,
		"--grpc-addr", c.GRPCAddr, "--http-addr", c.HTTPAddr, "--issuer-url", c.IssuerURL,
		"--ui=false", "--log-format", "text", "--log-level", "warn",
	}
	return append(args, r.extraArgs...)
}

// startProcess starts the binary and waits until it reports SERVING.
func (r *Replica) startProcess(ctx context.Context) error {
	r.starts++
	logPath := filepath.Join(r.dir, fmt.Sprintf("replica-%d-%d.log", r.Index, r.starts))
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(r.bin, r.procArgs()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start replica %d: %w", r.Index, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(p.done) }()
	conn, err := grpc.NewClient(r.cfg.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return err
	}
	health := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		res, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
		ccancel()
		if err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		select {
		case <-p.done:
			_ = conn.Close()
			return fmt.Errorf("replica %d exited at start (%s): %s", r.Index, cmd.ProcessState, tail(logPath))
		case <-ctx.Done():
			_ = conn.Close()
			_ = cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("replica %d not serving: %w (log: %s)", r.Index, ctx.Err(), tail(logPath))
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.proc = p
	r.setClients(conn)
	return nil
}

// stopProcess ends the process with sig (SIGTERM: a graceful shutdown,
// killed after a bound; SIGKILL: at once) and reaps it.
func (r *Replica) stopProcess(sig syscall.Signal) {
	p := r.proc
	_ = r.conn.Close()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	r.proc, r.conn = nil, nil
}

// readBootstrap reads the admin credential the first replica wrote.
func readBootstrap(path string) (token, orgID string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	var cred struct {
		Token string `json:"token"`
		OrgID string `json:"orgId"`
	}
	if err := json.Unmarshal(raw, &cred); err != nil {
		return "", "", err
	}
	if cred.Token == "" {
		return "", "", errors.New("no token in the bootstrap file")
	}
	return cred.Token, cred.OrgID, nil
}

// tail returns the end of a log file, for an error message.
func tail(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(raw) > 2000 {
		raw = raw[len(raw)-2000:]
	}
	return string(raw)
}
