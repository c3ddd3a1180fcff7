// Command baseline is the "empty gRPC handler" that bench/load.sh measures
// next to the broker: a grpc-go server with only grpc.health.v1 registered,
// no interceptors, no reflection, no store. Whatever the broker costs beyond
// this (interceptors, authentication, bbolt, policy) is tokenbroker's own.
//
//	go run ./bench/baseline --addr 127.0.0.1:0
//
// It prints "listening on <host:port>" to stdout once it accepts calls, and
// stops on SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	flag.Parse()

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer()) // "" is SERVING by default

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		s.GracefulStop()
	}()

	fmt.Printf("listening on %s\n", lis.Addr())
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}
