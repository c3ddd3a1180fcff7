package linearizability_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/server/linearizability"
)

// TestCrash runs the workload against the real binary over one data file
// while SIGKILLing and restarting it every few seconds (-linz.kill-every,
// randomised ±50%), so calls in flight at a kill have unknown outcomes and
// every answered one must survive the restart:
//
//	go test ./server/linearizability -run Crash -linz.crash -linz.duration=60s
func TestCrash(t *testing.T) {
	if !*flagCrash {
		t.Skip("crash mode is off: run with -linz.crash (or TOKENBROKER_LINZ_CRASH=1)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tokenbroker")
	began := time.Now()
	build := exec.Command("go", "build", "-o", bin, "github.com/tokenbroker/tokenbroker/cmd/tokenbroker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the broker in %s", time.Since(began).Round(time.Millisecond))
	b := &binary{t: t, path: bin, dir: dir, grpcAddr: freeAddr(t), httpAddr: freeAddr(t)}
	b.start()
	t.Cleanup(b.stop)

	var cred struct {
		Token string `json:"token"`
		OrgID string `json:"orgId"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "bootstrap.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cred); err != nil {
		t.Fatal(err)
	}
	base := "http://" + b.httpAddr
	tenant := createTenant(t, base, cred.Token)

	cfg := linearizability.Config{
		Endpoints:  []string{base},
		AdminToken: cred.Token,
		OrgID:      cred.OrgID,
		Tenant:     tenant,
		Clients:    *flagClients,
		Duration:   duration(60 * time.Second),
		// A killed broker answers nothing: calls time out quickly rather
		// than waiting out a long default.
		RequestTimeout: 5 * time.Second,
		SourceIPs:      true,
	}
	h := linearizability.NewHistory()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() {
		defer cancel()
		runErr = linearizability.Run(ctx, cfg, h)
	})

	kills := 0
	for {
		wait := time.Duration(float64(*flagKillEvery) * (0.5 + rand.Float64()))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		if ctx.Err() != nil {
			break
		}
		b.kill()
		kills++
		b.start()
	}
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	t.Logf("%d SIGKILLs and restarts in %s", kills, cfg.Duration)
	checkHistory(t, h, true)
}

// binary is the broker running as a child process.
type binary struct {
	t                  *testing.T
	path, dir          string
	grpcAddr, httpAddr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs int // restarts, naming the log files
}

// start starts the binary on the same data file and ports, and waits
// until it answers over REST.
func (b *binary) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logs++
	logf, err := os.Create(filepath.Join(b.dir, "broker-"+strconv.Itoa(b.logs)+".log"))
	if err != nil {
		b.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(b.path, "serve",
		"--grpc-addr", b.grpcAddr, "--http-addr", b.httpAddr,
		"--data", filepath.Join(b.dir, "data", "tokenbroker.db"),
		"--bootstrap-file", filepath.Join(b.dir, "bootstrap.json"),
		"--pulsar-token-limit", "1000000")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.cmd = cmd
	// Up when REST answers (any status). The bound is a safety net.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + b.httpAddr + "/v2/currentOrg")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("broker did not come up within 60 s (log %s): %v", logf.Name(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs the binary and reaps it.
func (b *binary) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	err := b.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		b.t.Errorf("wait for the killed broker: %v", err)
	}
	b.cmd = nil
}

// stop ends the binary gracefully (SIGTERM), or kills it after a bound.
func (b *binary) stop() {
	b.mu.Lock()
	cmd := b.cmd
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	b.mu.Lock()
	b.cmd = nil
	b.mu.Unlock()
}

// freeAddr returns a loopback address with a port free right now; the
// binary binds it on every restart (Go listeners set SO_REUSEADDR, so a
// killed broker's port is free again at once).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
}
