// Command baseline is the "empty handler" that bench/load.sh measures next
// to the broker: a grpc-go server with only grpc.health.v1 registered, no
// interceptors, no reflection, no store, but the broker's process-wide
// settings: its pool of stream workers (--stream-workers) and its pacing of
// the garbage collector (server/gctune, --gc-pacing); and, with --http-addr, a bare
// net/http server whose POST /v1/auth/check decodes the JSON body and
// answers a fixed JSON object, as the cheapest possible REST Check. Whatever
// the broker costs beyond these (interceptors, authentication, bbolt,
// policy, the gateway) is tokenbroker's own.
//
//	go run ./bench/baseline --addr 127.0.0.1:0 --http-addr 127.0.0.1:0
//
// It prints "listening on <host:port>" (and "http listening on <host:port>")
// to stdout once it accepts calls, and stops on SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // --pprof-addr
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tokenbroker/tokenbroker/bench/internal/bare"
	"github.com/tokenbroker/tokenbroker/server/gctune"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	httpAddr := flag.String("http-addr", "", "also serve the bare JSON handler here")
	pprofAddr := flag.String("pprof-addr", "", "serve net/http/pprof here (bench/profile.sh profiles the baseline as it does the broker)")
	// The broker serves with a pool of stream workers (server.streamWorkers:
	// max(128, 4 x GOMAXPROCS)); so does the baseline by default, so that the
	// comparison measures the broker's own work and not a server option
	// (the pool saves the empty call ~5 us of CPU here).
	workers := flag.Uint("stream-workers", uint(max(128, 4*runtime.GOMAXPROCS(0))), "grpc.NumStreamWorkers (0: grpc-go's default, a goroutine per stream)")
	// Likewise the broker's GC pacing: without it a do-nothing call pays
	// Go's default collection rate and the broker's own Health call beats
	// the "empty" server (measured: 52.6k against 41.3k calls/s).
	gcPacing := flag.Bool("gc-pacing", true, "pace the garbage collector as the broker does (server/gctune; GOGC in the environment wins)")
	flag.Parse()
	if *gcPacing {
		defer gctune.Start(gctune.DefaultFloor).Stop()
	}

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	var opts []grpc.ServerOption
	if *workers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(*workers)))
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, health.NewServer()) // "" is SERVING by default

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		s.GracefulStop()
	}()

	if *pprofAddr != "" {
		pl, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
		go func() { _ = http.Serve(pl, http.DefaultServeMux) }() // net/http/pprof registers there
		fmt.Printf("pprof listening on %s\n", pl.Addr())
	}
	if *httpAddr != "" {
		hl, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /v1/auth/check", bare.CheckJSON)
		go func() { _ = http.Serve(hl, mux) }()
		fmt.Printf("http listening on %s\n", hl.Addr())
	}
	fmt.Printf("listening on %s\n", lis.Addr())
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}
