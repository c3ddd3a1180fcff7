// Command grpcload is a small closed-loop gRPC load generator for the
// bench scripts: C workers over CONNS connections, each calling one method
// with one fixed request, back to back, for a duration or a number of calls.
//
// ghz builds every request from JSON through dynamic messages, which costs
// it 40-110 µs of CPU per call here; the broker's real callers (services
// with generated stubs) pay a fraction of that. On a 2-core machine the load
// tool shares the cores with the server, so its own cost caps what a run
// can show: grpcload uses the generated stubs of gen/ and grpc-go's client
// as a service would, and reports its own CPU per call so that a script can
// print it next to the server's.
//
//	go run ./bench/internal/grpcload -addr 127.0.0.1:8443 -call create -token AstraCS:... -role ROLE_ID -c 64 -duration 5s
//	go run ./bench/internal/grpcload -addr 127.0.0.1:8443 -call check -credential AstraCS:... -c 50
//	go run ./bench/internal/grpcload -addr 127.0.0.1:9000 -call health -c 50
//	go run ./bench/internal/grpcload -addr 127.0.0.1:8443 -call login -username U -password P -c 50 -n 200
//
// Calls still in flight when the duration ends complete but are neither
// counted nor timed (as ghz's --duration-stop ignore); with -n, the run
// ends after that many calls and rps is n over the time they took. It prints one JSON
// object: rps, count, errors (by gRPC code), p50/p99 in seconds and
// cpu_us_per_call (its user + system CPU over the run, divided by count).
// The bench scripts only measure with it; nothing passes or fails on time.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

type result struct {
	RPS          float64        `json:"rps"`
	Count        int            `json:"count"`
	Errors       map[string]int `json:"errors"`
	P50          float64        `json:"p50"`
	P99          float64        `json:"p99"`
	CPUusPerCall float64        `json:"cpu_us_per_call"`
}

func main() {
	addr := flag.String("addr", "", "the server's gRPC address (host:port, plaintext)")
	call := flag.String("call", "health", "health (grpc.health.v1 Check), check (AuthService/Check), login (AuthService/CreateAuthToken) or create (TokenService/CreateToken)")
	workers := flag.Int("c", 50, "concurrent callers")
	conns := flag.Int("conns", 1, "connections the callers share in turn")
	duration := flag.Duration("duration", 5*time.Second, "how long to call")
	total := flag.Int("n", 0, "make this many calls instead (the duration is then ignored)")
	token := flag.String("token", "", "create: the caller's application token (sent as Bearer)")
	role := flag.String("role", "", "create: the role ID the new tokens hold")
	credential := flag.String("credential", "", "check: the credential to check")
	action := flag.String("action", "db-table-select", "check: the action")
	resource := flag.String("resource", "", "check: the resource DRN (empty: the broker's own answer for none)")
	username := flag.String("username", "", "login: the client ID or user name")
	password := flag.String("password", "", "login: the secret or password")
	flag.Parse()
	if *addr == "" || *workers < 1 || *conns < 1 {
		fail("-addr is required; -c and -conns must be at least 1")
	}

	invoke, err := caller(*call, request{
		token: *token, role: *role, credential: *credential, action: *action, resource: *resource,
		username: *username, password: *password,
	})
	if err != nil {
		fail(err.Error())
	}
	ccs := make([]*grpc.ClientConn, *conns)
	for i := range ccs {
		cc, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fail(err.Error())
		}
		defer cc.Close()
		ccs[i] = cc
		// One call per connection before the clock starts: dialing and
		// the first stream's setup are not part of the rate.
		if err := invoke(context.Background(), cc); err != nil {
			fail(fmt.Sprintf("first call: %v", err))
		}
	}

	var (
		stop    atomic.Bool
		tickets atomic.Int64 // -n: calls handed out
		wg      sync.WaitGroup
		mu      sync.Mutex
		all     []time.Duration
		errs    = map[string]int{}
	)
	// more reports whether a worker starts another call; counted reports
	// whether a call that ended at t is part of the run.
	more := func() bool { return !stop.Load() }
	counted := func(time.Time) bool { return true }
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(*duration)
	if *total > 0 {
		more = func() bool { return tickets.Add(1) <= int64(*total) }
	} else {
		counted = func(t time.Time) bool { return !t.After(deadline) }
	}
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(cc *grpc.ClientConn) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			mine := map[string]int{}
			ctx := context.Background()
			for more() {
				t0 := time.Now()
				err := invoke(ctx, cc)
				t1 := time.Now()
				if !counted(t1) {
					break // finished after the end: neither counted nor timed
				}
				if err != nil {
					mine[status.Code(err).String()]++
					continue
				}
				lat = append(lat, t1.Sub(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			for k, v := range mine {
				errs[k] += v
			}
			mu.Unlock()
		}(ccs[w%len(ccs)])
	}
	var elapsed, cpu time.Duration
	if *total > 0 {
		wg.Wait()
		elapsed, cpu = time.Since(start), cpuTime()-cpu0
	} else {
		time.Sleep(time.Until(deadline))
		stop.Store(true)
		elapsed, cpu = *duration, cpuTime()-cpu0 // the in-flight tail's CPU is a few calls' worth
		wg.Wait()
	}

	slices.Sort(all)
	n := len(all)
	for _, v := range errs {
		n += v
	}
	r := result{RPS: float64(n) / elapsed.Seconds(), Count: n, Errors: errs}
	if len(all) > 0 {
		r.P50 = all[len(all)*50/100].Seconds()
		r.P99 = all[len(all)*99/100].Seconds()
	}
	if n > 0 {
		r.CPUusPerCall = float64(cpu.Microseconds()) / float64(n)
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fail(err.Error())
	}
}

// request holds the flags a call's request is built from.
type request struct {
	token, role                  string // create
	credential, action, resource string // check
	username, password           string // login
}

// caller returns the function that makes one call of the chosen kind on a
// connection; the request (and its metadata) is built once.
func caller(call string, q request) (func(context.Context, *grpc.ClientConn) error, error) {
	switch call {
	case "health":
		req := &healthpb.HealthCheckRequest{}
		return func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(cc).Check(ctx, req)
			return err
		}, nil
	case "check":
		if q.credential == "" {
			return nil, fmt.Errorf("-call check needs -credential")
		}
		req := &tbv1.CheckRequest{Credential: q.credential, Action: q.action, Resource: q.resource}
		return func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := tbv1.NewAuthServiceClient(cc).Check(ctx, req)
			return err
		}, nil
	case "login":
		if q.username == "" || q.password == "" {
			return nil, fmt.Errorf("-call login needs -username and -password")
		}
		req := &tbv1.CreateAuthTokenRequest{Username: q.username, Password: q.password}
		return func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := tbv1.NewAuthServiceClient(cc).CreateAuthToken(ctx, req)
			return err
		}, nil
	case "create":
		if q.token == "" || q.role == "" {
			return nil, fmt.Errorf("-call create needs -token and -role")
		}
		req := &tbv1.CreateTokenRequest{Roles: []string{q.role}, Description: "bench"}
		md := metadata.Pairs("authorization", "Bearer "+q.token)
		return func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := tbv1.NewTokenServiceClient(cc).CreateToken(metadata.NewOutgoingContext(ctx, md), req)
			return err
		}, nil
	}
	return nil, fmt.Errorf("-call %q: want health, check, login or create", call)
}

// cpuTime is this process's user + system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "grpcload:", msg)
	os.Exit(2)
}
