package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/policy"
)

// startInternal starts a real server for internal tests (servertest cannot
// be imported here: it imports this package).
func startInternal(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	fixed := time.Date(2040, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := Start(context.Background(), Config{
		GRPCAddr:     "127.0.0.1:0",
		HTTPAddr:     "127.0.0.1:0",
		DataPath:     filepath.Join(dir, "tb.db"),
		Logger:       slog.New(slog.DiscardHandler),
		BootstrapOut: io.Discard,
		Now:          func() time.Time { return fixed },
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// TestEveryMethodHasARule proves the rules table and the registered
// services agree exactly: no method can be reachable without a rule (it
// would be denied, but silently broken), no rule is stale, every checked
// action is a real action, and only infrastructure services are public.
func TestEveryMethodHasARule(t *testing.T) {
	s := startInternal(t)

	registered := map[string]bool{}
	for svc, info := range s.grpc.GetServiceInfo() {
		if len(info.Methods) == 0 {
			t.Errorf("service %s registers no methods", svc)
		}
		for _, m := range info.Methods {
			registered["/"+svc+"/"+m.Name] = true
		}
	}
	for _, want := range []string{
		"/tokenbroker.v1.TokenService/CreateToken",
		"/grpc.health.v1.Health/Check",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	} {
		if !registered[want] {
			t.Fatalf("expected %s among registered methods; got %v", want, sortedKeys(registered))
		}
	}

	for _, m := range sortedKeys(registered) {
		if _, ok := rules[m]; !ok {
			t.Errorf("registered method %s has no entry in rules (it would be denied to everyone)", m)
		}
	}
	for _, m := range sortedKeys(rules) {
		r := rules[m]
		if !registered[m] {
			t.Errorf("rules has a stale entry %s: no such method is registered", m)
		}
		if r.public {
			if r.action != "" {
				t.Errorf("rule %s is public but names action %q", m, r.action)
			}
			if !strings.HasPrefix(m, "/grpc.health.") && !strings.HasPrefix(m, "/grpc.reflection.") && !selfAuthenticating[m] {
				t.Errorf("rule %s is public, but only health, reflection and the calls that carry their own credential may be", m)
			}
			continue
		}
		if r.anyPrincipal {
			if r.action != "" {
				t.Errorf("rule %s is anyPrincipal but names action %q", m, r.action)
			}
			continue
		}
		if !policy.KnownAction(r.action) {
			t.Errorf("rule %s names action %q, which policy.KnownAction rejects", m, r.action)
		}
	}
}

// selfAuthenticating lists the public methods whose credential travels in
// the request itself (login, Check); the broker verifies and throttles it.
var selfAuthenticating = map[string]bool{
	tbv1.AuthService_CreateAuthToken_FullMethodName:   true,
	tbv1.AuthService_GenerateAuthToken_FullMethodName: true,
	tbv1.AuthService_Check_FullMethodName:             true,
	// Authorizes itself: accepts application/auth tokens or the tenant's Pulsar JWT.
	tbv1.PulsarTokenService_GetNamespaceStats_FullMethodName: true,
}

// TestUnlistedMethodIsDenied proves the guard fails closed: a method
// missing from the rules table is denied, even to a valid Organization
// Administrator credential.
func TestUnlistedMethodIsDenied(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)

	t.Run("empty table", func(t *testing.T) {
		g := &guard{log: discard, rules: map[string]rule{}}
		for _, m := range []string{
			"/tokenbroker.v1.TokenService/CreateToken",
			"/grpc.health.v1.Health/Check",
			"/unknown.Service/Method",
			"",
		} {
			_, err := g.admit(context.Background(), m, nil)
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("admit(%q) = %v, want PermissionDenied", m, err)
			}
		}
	})

	t.Run("admin token, real broker", func(t *testing.T) {
		s := startInternal(t)
		g := &guard{b: s.broker, log: discard, rules: map[string]rule{}}
		ctx := metadata.NewIncomingContext(context.Background(),
			metadata.Pairs("authorization", "Bearer "+s.Bootstrap().Token))
		if _, err := g.admit(ctx, "/tokenbroker.v1.TokenService/ListTokens", nil); status.Code(err) != codes.PermissionDenied {
			t.Errorf("admit with empty rules = %v, want PermissionDenied", err)
		}
		// Control: the same credential is admitted by the real table.
		g.rules = rules
		if _, err := g.admit(ctx, "/tokenbroker.v1.TokenService/ListTokens", nil); err != nil {
			t.Errorf("admit with the real rules = %v, want nil", err)
		}
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestGatewayAndGRPCAgreeOnEveryMethod walks every unary method and calls
// it without a credential twice: over a gRPC connection and over the
// gateway's in-process channel. Both run the same interceptor chain, so
// they must answer with the same code; and the channel serves exactly the
// server's unary methods (none that lacks a rule, none hidden from it).
func TestGatewayAndGRPCAgreeOnEveryMethod(t *testing.T) {
	s := startInternal(t)
	conn, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	unary := map[string]bool{}
	for svc, info := range s.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			if !m.IsClientStream && !m.IsServerStream {
				unary["/"+svc+"/"+m.Name] = true
			}
		}
	}
	served := s.inproc.Methods()
	sort.Strings(served)
	for _, m := range served {
		if !unary[m] {
			t.Errorf("the gateway channel serves %s, which the gRPC server does not serve as unary", m)
		}
		delete(unary, m)
	}
	for m := range unary {
		if !strings.HasPrefix(m, "/grpc.reflection.") {
			t.Errorf("the gateway channel does not serve %s", m)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range served {
		if m == "/grpc.health.v1.Health/Check" || m == "/grpc.health.v1.Health/List" {
			continue // answered by the health server, not by a rule: both serve it
		}
		overNet := conn.Invoke(ctx, m, &emptypb.Empty{}, &emptypb.Empty{})
		inProc := s.inproc.Invoke(ctx, m, &emptypb.Empty{}, &emptypb.Empty{})
		if status.Code(overNet) != status.Code(inProc) {
			t.Errorf("%s without a credential: gRPC %v, in process %v", m, overNet, inProc)
		}
		if rules[m].public {
			continue
		}
		if status.Code(inProc) != codes.Unauthenticated {
			t.Errorf("%s without a credential in process = %v, want Unauthenticated", m, inProc)
		}
	}
}
