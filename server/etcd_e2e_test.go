package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
	"github.com/tokenbroker/tokenbroker/store/etcd/etcdtest"
)

// End-to-end over the etcd backend, on a real etcd started by the test:
// the token lifecycle over REST and gRPC, Check, a restart that reuses the
// data, a scan of the whole keyspace for secrets, the key check and two
// brokers bootstrapping one empty prefix at once, and one call path of
// every service (TestEtcdEveryService). These run in every pass, each on an
// etcd member of its own; with TOKENBROKER_TEST_STORE=etcd every other e2e
// suite of this package runs over etcd too (servertest), and both backends
// pass the same store conformance suite.

// startEtcd starts an etcd member for one test (stopped when it ends) and
// returns its client endpoint.
func startEtcd(t testing.TB) string {
	t.Helper()
	srv, err := etcdtest.Start()
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv.Endpoint
}

var etcdPrefixes atomic.Int64

func freshEtcdPrefix() string {
	return fmt.Sprintf("/e2e-%d-%d/", os.Getpid(), etcdPrefixes.Add(1))
}

func onEtcd(endpoint, prefix string) servertest.Option {
	return servertest.WithConfig(func(c *server.Config) {
		c.Store = server.StoreEtcd
		c.Etcd = server.EtcdConfig{Endpoints: []string{endpoint}, Prefix: prefix, StaleAfter: servertest.EtcdStaleAfter}
	})
}

// etcdValues returns every key and value under prefix.
func etcdValues(t *testing.T, endpoint, prefix string) [][]byte {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, kv := range resp.Kvs {
		out = append(out, kv.Key, kv.Value)
	}
	return out
}

func TestEtcdLifecycleRestartAndSecrets(t *testing.T) {
	endpoint, prefix := startEtcd(t), freshEtcdPrefix()
	env := servertest.Start(t, onEtcd(endpoint, prefix))

	type cred struct{ clientID, secret, token string }
	creds := []cred{{env.AdminClientID, env.Admin.Secret, env.AdminToken}}
	code, raw, _ := env.REST(t, http.MethodPost, tokensPath, env.AdminToken, map[string]any{
		"roles": []string{policy.DatabaseAdministratorID}, "description": "rest"})
	wantStatus(t, "create over REST", code, raw, http.StatusOK)
	m := object(t, raw)
	creds = append(creds, cred{str(t, m["clientId"]), str(t, m["secret"]), str(t, m["token"])})
	r := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID, policy.RWUserID)
	creds = append(creds, cred{r.ClientId, r.Secret, r.Token})
	gone := env.CreateToken(t, env.AdminToken, policy.RWUserID)
	for _, c := range creds {
		code, raw, _ := env.REST(t, http.MethodGet, tokensPath, c.token, nil)
		wantStatus(t, "use token", code, raw, http.StatusOK)
	}
	createRole(t, env, "some-role", "org-token-read")
	res, err := env.Auth.Check(t.Context(), &tbv1.CheckRequest{Credential: env.AdminToken, Action: "org-token-read", Resource: orgDRN(env)})
	if err != nil || !res.GetAllowed() {
		t.Fatalf("Check of the admin token: %v, %v", res, err)
	}
	if _, err := env.Tokens.DeleteToken(env.GRPCCtx(env.AdminToken), &tbv1.DeleteTokenRequest{ClientId: gone.ClientId}); err != nil {
		t.Fatal(err)
	}

	env.Restart(t)
	if b := env.Server.Bootstrap(); b != nil {
		t.Fatalf("restart bootstrapped again: %s", b.ClientID)
	}
	if n := len(tokenList(t, env)); n != 3 {
		t.Errorf("after restart %d tokens, want 3", n)
	}
	code, raw, _ = env.REST(t, http.MethodGet, tokensPath, creds[1].token, nil)
	wantStatus(t, "token after restart", code, raw, http.StatusOK)
	code, raw, _ = env.REST(t, http.MethodGet, tokensPath, gone.Token, nil)
	wantStatus(t, "deleted token after restart", code, raw, http.StatusUnauthorized)
	env.Shutdown()

	keyFile, err := os.ReadFile(env.DataPath + ".key")
	if err != nil {
		t.Fatal(err)
	}
	master, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(keyFile)))
	forbidden := map[string][]byte{"master key": master, "key file text": bytes.TrimSpace(keyFile)}
	all := bytes.Join(etcdValues(t, endpoint, prefix), []byte{0})
	for _, c := range creds {
		hexPart := c.token[len(c.token)-64:]
		digest, _ := hex.DecodeString(hexPart)
		forbidden["secret of "+c.clientID] = []byte(c.secret)
		forbidden["token of "+c.clientID] = []byte(c.token)
		forbidden["token hex of "+c.clientID] = []byte(hexPart)
		forbidden["raw sha256(secret) of "+c.clientID] = digest
		if !bytes.Contains(all, []byte(c.clientID)) { // control: the scan sees plaintext at all
			t.Errorf("control failed: client ID %s not found in the etcd keyspace", c.clientID)
		}
	}
	for what, b := range forbidden {
		if bytes.Contains(all, b) {
			t.Errorf("etcd keyspace contains the %s", what)
		}
	}
}

// TestEtcdForeignKeyRefused: a broker whose key file does not belong to the
// installation refuses to start, saying so.
func TestEtcdForeignKeyRefused(t *testing.T) {
	endpoint, prefix := startEtcd(t), freshEtcdPrefix()
	servertest.Start(t, onEtcd(endpoint, prefix))
	other := filepath.Join(t.TempDir(), "other.key")
	writeKeyFile(t, other)
	cfg := etcdServerConfig(t, endpoint, prefix, other)
	srv, err := server.Start(t.Context(), cfg)
	if err == nil {
		_ = srv.Shutdown(context.Background())
		t.Fatal("a broker with a foreign key file started")
	}
	if !strings.Contains(err.Error(), "key file does not belong") {
		t.Fatalf("start with a foreign key: %v, want a message saying the key does not belong", err)
	}
}

// TestEtcdConcurrentBootstrap: two brokers with the same key starting on
// one empty prefix at once bootstrap it exactly once, and both serve.
func TestEtcdConcurrentBootstrap(t *testing.T) {
	endpoint, prefix := startEtcd(t), freshEtcdPrefix()
	dir := t.TempDir()
	keyA, keyB := filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key")
	writeKeyFile(t, keyA)
	key, _ := os.ReadFile(keyA)
	if err := os.WriteFile(keyB, key, 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	srvs := make([]*server.Server, 2)
	errs := make([]error, 2)
	for i, k := range []string{keyA, keyB} {
		wg.Go(func() { srvs[i], errs[i] = server.Start(t.Context(), etcdServerConfig(t, endpoint, prefix, k)) })
	}
	wg.Wait()
	boots := 0
	for i, s := range srvs {
		if errs[i] != nil {
			t.Fatalf("broker %d: %v", i, errs[i])
		}
		defer s.Shutdown(context.Background())
		if s.Bootstrap() != nil {
			boots++
		}
	}
	if boots != 1 {
		t.Fatalf("%d brokers bootstrapped, want exactly 1", boots)
	}
}

func writeKeyFile(t *testing.T, path string) {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func etcdServerConfig(t *testing.T, endpoint, prefix, keyFile string) server.Config {
	return server.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		DataPath: filepath.Join(t.TempDir(), "unused.db"), KeyFile: keyFile,
		Store:  server.StoreEtcd,
		Etcd:   server.EtcdConfig{Endpoints: []string{endpoint}, Prefix: prefix, StaleAfter: servertest.EtcdStaleAfter},
		Logger: slog.New(slog.DiscardHandler), BootstrapOut: io.Discard,
	}
}

// TestEtcdEveryService: one call path of each service over etcd: users and
// login (AuthService), Pulsar tenants and tokens with Check
// (PulsarTokenService), databases (DatabaseService) and the audit log
// (AuditService); TokenService is covered above.
func TestEtcdEveryService(t *testing.T) {
	env := servertest.Start(t, onEtcd(startEtcd(t), freshEtcdPrefix()))
	ctx := env.GRPCCtx(env.AdminToken)

	const pw = "etcd-e2e-Passw0rd"
	if _, err := env.Auth.CreateUser(ctx, &tbv1.CreateUserRequest{Username: "etcd.user", Password: pw, Roles: []string{policy.RWUserID}}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	login, err := env.Auth.CreateAuthToken(context.Background(), &tbv1.CreateAuthTokenRequest{Username: "etcd.user", Password: pw})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	res, err := env.Auth.Check(context.Background(), &tbv1.CheckRequest{Credential: login.GetAuthToken(),
		Action: "db-table-select", Resource: policy.DatabaseDRN(env.OrgID, "db1") + ":keyspace:ks:table:t"})
	if err != nil || !res.GetAllowed() {
		t.Fatalf("Check of a user's auth token: %v, %v", res, err)
	}

	peCreateTenant(t, env, "etcdtenant", "")
	issued := peIssue(t, env, "etcdtenant", map[string]any{})
	peWantAllowed(t, env, "Pulsar JWT over etcd", issued.JWT, issued.ID, peStream(env, "etcdtenant"))
	code, raw, _ := env.REST(t, http.MethodDelete, peTenantsPath+"/etcdtenant", env.AdminToken, nil)
	if code/100 != 2 {
		t.Fatalf("delete tenant: HTTP %d %s", code, raw)
	}
	if res := peCheck(t, env, "Pulsar JWT of a deleted tenant", issued.JWT, peStream(env, "etcdtenant")); res.GetAllowed() {
		t.Fatal("a deleted tenant's JWT is still allowed")
	}

	db := dbeCreate(t, env, env.AdminToken, map[string]any{
		"name": "etcddb", "keyspace": "ks1", "cloudProvider": "GCP", "tier": "serverless", "region": "us-east1"})
	dbeGetOK(t, env, env.AdminToken, db.ID)

	env.FlushAudit(t)
	events, err := env.Audit.ListAuditEvents(ctx, &tbv1.ListAuditEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	if len(events.GetEvents()) < 4 {
		t.Fatalf("%d audit events, want at least the user, tenant, tenant delete and database", len(events.GetEvents()))
	}
}
