package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
	"github.com/tokenbroker/tokenbroker/store/etcd/etcdtest"
)

// startOn starts a broker on an existing data file (servertest always
// starts on a fresh one) and returns a gRPC connection to it.
func startOn(t *testing.T, dataPath string) (*server.Server, *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, server.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataPath: dataPath,
		Logger: slog.New(slog.DiscardHandler), BootstrapOut: io.Discard,
		Now: servertest.NewClock(servertest.DefaultStart).Now,
	})
	if err != nil {
		t.Fatalf("start on %s: %v", dataPath, err)
	}
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, conn
}

// copyFile copies src to dst (mode 0600).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// verifies reports whether the broker behind conn accepts token (Check
// answers with its principal).
func verifies(t *testing.T, conn *grpc.ClientConn, orgID, token string) bool {
	t.Helper()
	resp, err := tbv1.NewAuthServiceClient(conn).Check(context.Background(), &tbv1.CheckRequest{
		Credential: token, Action: "db-table-select", Resource: "drn:astra:org:" + orgID + ":db:d:keyspace:k:table:t",
	})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp.GetAllowed()
}

// TestBackupUnderLoadThenRestore backs up while writers keep creating
// tokens, restores the backup as a new data file, starts a broker on it,
// and finds that every token acknowledged before the backup began
// verifies.
func TestBackupUnderLoadThenRestore(t *testing.T) {
	servertest.RequireBolt(t, "online backup and restore copy a bbolt file; on etcd back up with etcdctl snapshot save (docs/storage.md)")
	env := servertest.Start(t)
	r := newRunner(t, env)

	var (
		mu    sync.Mutex
		acked []string // bearer tokens, in acknowledgement order
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	ackedNow := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := env.Tokens.CreateToken(env.GRPCCtx(env.AdminToken), &tbv1.CreateTokenRequest{Roles: []string{policy.RWSvcAcctID}})
				if err != nil {
					t.Errorf("CreateToken under load: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, resp.GetToken())
				mu.Unlock()
			}
		}()
	}
	waitFor(t, "40 tokens acknowledged before the backup", func() bool { return ackedNow() >= 40 })

	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "b.tbbak")
	res := r.ok("backup", out)
	afterBackup := ackedNow()
	// Keep writing a little longer, so the backup sat inside the load.
	waitFor(t, "20 more tokens after the backup", func() bool { return ackedNow() >= afterBackup+20 })
	close(stop)
	wg.Wait()
	t.Logf("tokens acknowledged: %d before the backup began, %d when it ended (writes during the backup: %d)",
		len(before), afterBackup, afterBackup-len(before))
	if !strings.Contains(res.stdout, "sha256") || !strings.Contains(res.stderr, "key file is not in it") {
		t.Fatalf("backup output:\nstdout %s\nstderr %s", res.stdout, res.stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v (want 0600)", err, fi.Mode().Perm())
	}

	// Restore on "another machine": the key file was backed up separately.
	data := filepath.Join(t.TempDir(), "restored", "tokenbroker.db")
	copyFile(t, env.DataPath+".key", data+".key")
	var rep struct {
		OrgID  string `json:"orgId"`
		DryRun bool   `json:"dryRun"`
	}
	r.jsonOf(&rep, "restore", "--data", data, out, "--dry-run")
	if !rep.DryRun || rep.OrgID != env.OrgID {
		t.Fatalf("restore --dry-run = %+v", rep)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("restore --dry-run created the data file (%v)", err)
	}
	r.ok("restore", "--data", data, out)

	_, conn := startOn(t, data)
	for i, tok := range before {
		if !verifies(t, conn, env.OrgID, tok) {
			t.Errorf("token %d of %d acknowledged before the backup does not verify after the restore", i+1, len(before))
		}
	}
	if !verifies(t, conn, env.OrgID, env.AdminToken) {
		t.Error("the admin token does not verify after the restore")
	}
	// The backup was audited on the broker it was taken from.
	if res := r.ok("audit", "list", "--limit", "1000"); !strings.Contains(res.stdout, "AdminService.Backup") {
		t.Errorf("no audit event for the backup:\n%s", res.stdout)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRestoreRefusals: a foreign key file, a damaged backup, a running
// broker and a file that is no backup are refused, and nothing changes.
func TestRestoreRefusals(t *testing.T) {
	servertest.RequireBolt(t, "restore replaces a bbolt file; on etcd restore with etcdctl snapshot restore (docs/storage.md)")
	env := servertest.Start(t)
	r := newRunner(t, env)
	tok := env.CreateToken(t, env.AdminToken, policy.RWSvcAcctID)
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tbbak")
	r.ok("backup", out)

	// While the broker serves its file: refused.
	r.fails(1, "a broker is running on "+env.DataPath, "restore", "--data", env.DataPath, out)

	// A foreign key file: refused, with the reason, and nothing written.
	data := filepath.Join(dir, "other", "tokenbroker.db")
	foreign := make([]byte, 32)
	rand.Read(foreign)
	if err := os.MkdirAll(filepath.Dir(data), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data+".key", []byte(base64.StdEncoding.EncodeToString(foreign)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.fails(1, "does not belong to this database", "restore", "--data", data, out)
	r.fails(1, "does not belong to this database", "restore", "--data", data, out, "--dry-run")
	assertOnly(t, filepath.Dir(data), "tokenbroker.db.key")

	// No key file at all: refused, naming where it must go.
	nokey := filepath.Join(dir, "nokey", "tokenbroker.db")
	r.fails(1, "key file "+nokey+".key not found", "restore", "--data", nokey, out)
	if _, err := os.Stat(filepath.Dir(nokey)); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left its data directory behind (%v)", err)
	}

	// A damaged backup: refused before the key is even looked at.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	damaged := filepath.Join(dir, "damaged.tbbak")
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r.fails(1, "checksum mismatch", "restore", "--data", data, damaged)
	r.fails(1, "truncated", "restore", "--data", data, env.DataPath+".key")
	assertOnly(t, filepath.Dir(data), "tokenbroker.db.key")

	// In place, with the broker stopped: the current file is kept aside,
	// and the broker starts on the restored one.
	r.ok("token", "delete", tok.ClientId) // after the backup: the restore brings it back
	env.Shutdown()
	r.now = func() time.Time { return time.Date(2041, 2, 3, 4, 5, 6, 0, time.UTC) }
	res := r.ok("restore", "--data", env.DataPath, out)
	kept := env.DataPath + ".replaced-20410203T040506Z"
	if !strings.Contains(res.stdout, kept) {
		t.Fatalf("restore in place does not name the kept file:\n%s", res.stdout)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("the replaced data file was not kept: %v", err)
	}
	env.Restart(t)
	if !verifies(t, env.Conn, env.OrgID, tok.Token) {
		t.Fatal("a token deleted after the backup does not verify after restoring it")
	}
}

// assertOnly fails unless dir holds exactly the named files (no temp
// files left behind, nothing replaced).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

// TestBackupNeedsOrgWrite: a Database Administrator (who holds much, but
// not org-write) may not take a backup, and no file is written.
func TestBackupNeedsOrgWrite(t *testing.T) {
	env := servertest.Start(t)
	dba := env.CreateToken(t, env.AdminToken, policy.DatabaseAdministratorID)
	r := newRunner(t, env).with("TOKENBROKER_TOKEN", dba.Token)
	dir := t.TempDir()
	r.fails(1, "PermissionDenied", "backup", filepath.Join(dir, "b.tbbak"))
	assertOnly(t, dir)

	out := filepath.Join(dir, "exists.tbbak")
	if err := os.WriteFile(out, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	newRunner(t, env).fails(1, "give --force", "backup", out)
	newRunner(t, env).ok("backup", out, "--force")
}

// TestAdminRecover: refused while the broker runs; with it stopped, mints
// an Organization Administrator token that works after the restart and is
// in the audit log; refused with a foreign key file.
func TestAdminRecover(t *testing.T) {
	servertest.RequireBolt(t, "admin recover opens the bbolt file offline; on etcd see docs/storage.md (break-glass on etcd)")
	env := servertest.Start(t)
	r := newRunner(t, env)

	r.fails(1, "a broker is running on "+env.DataPath, "admin", "recover", "--data", env.DataPath)

	env.Shutdown()
	var cred struct {
		ClientID string   `json:"clientId"`
		Token    string   `json:"token"`
		OrgID    string   `json:"orgId"`
		Roles    []string `json:"roles"`
	}
	res := r.jsonOf(&cred, "admin", "recover", "--data", env.DataPath)
	if cred.OrgID != env.OrgID || len(cred.Roles) != 1 || cred.Roles[0] != policy.OrganizationAdministratorID ||
		!strings.HasPrefix(cred.Token, "AstraCS:"+cred.ClientID+":") {
		t.Fatalf("admin recover = %+v", cred)
	}
	if !strings.Contains(res.stderr, "WARNING") {
		t.Fatalf("admin recover warned nothing: %q", res.stderr)
	}

	env.Restart(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+cred.Token)
	if _, err := env.Tokens.CreateToken(ctx, &tbv1.CreateTokenRequest{Roles: []string{policy.OrganizationAdministratorID}}); err != nil {
		t.Fatalf("the recovered token cannot act as Organization Administrator: %v", err)
	}
	r = newRunner(t, env)
	res = r.ok("audit", "list")
	if !strings.Contains(res.stdout, "Admin.Recover") || !strings.Contains(res.stdout, "token:"+cred.ClientID) || !strings.Contains(res.stdout, "operator:") {
		t.Fatalf("no audit event for the recovery:\n%s", res.stdout)
	}

	// A foreign key file: refused, and no token minted.
	env.Shutdown()
	foreign := make([]byte, 32)
	rand.Read(foreign)
	if err := os.WriteFile(env.DataPath+".key", []byte(base64.StdEncoding.EncodeToString(foreign)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.fails(1, "does not belong to this database", "admin", "recover", "--data", env.DataPath)
	r.fails(1, "no data file", "admin", "recover", "--data", filepath.Join(t.TempDir(), "none.db"))
}

// TestVersion prints the build's version, commit and Go version.
func TestVersion(t *testing.T) {
	r := newRunner(t, nil)
	var v struct {
		Version   string `json:"version"`
		GoVersion string `json:"goVersion"`
	}
	r.jsonOf(&v, "version")
	if v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") {
		t.Fatalf("version = %+v", v)
	}
	if res := r.ok("version"); !strings.Contains(res.stdout, "commit") {
		t.Fatalf("version:\n%s", res.stdout)
	}
}

// TestAdminRecoverEtcd: on an etcd prefix, admin recover mints an
// Organization Administrator token while the broker keeps running; the
// broker accepts it as soon as its watch delivers the write, it is in the
// audit log, and a foreign key file is refused before anything is written.
func TestAdminRecoverEtcd(t *testing.T) {
	srv, err := etcdtest.Start()
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(srv.Stop)
	const prefix = "/recover/"
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Store = server.StoreEtcd
		c.Etcd = server.EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: prefix}
	}))
	r := newRunner(t, env)
	keyFile := env.DataPath + ".key" // the broker's key file (servertest keeps it beside DataPath)
	etcdFlags := []string{"admin", "recover", "--store", "etcd", "--etcd-endpoints", srv.Endpoint, "--etcd-prefix", prefix}

	r.fails(2, "--key-file", etcdFlags...)
	foreign := filepath.Join(t.TempDir(), "foreign.key")
	other := make([]byte, 32)
	rand.Read(other)
	if err := os.WriteFile(foreign, []byte(base64.StdEncoding.EncodeToString(other)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.fails(1, "does not belong", append(etcdFlags, "--key-file", foreign)...)
	r.fails(1, "holds no organization", "admin", "recover", "--store", "etcd", "--etcd-endpoints", srv.Endpoint, "--etcd-prefix", "/empty/", "--key-file", keyFile)

	var cred struct {
		ClientID string   `json:"clientId"`
		Token    string   `json:"token"`
		OrgID    string   `json:"orgId"`
		Roles    []string `json:"roles"`
	}
	r.jsonOf(&cred, append(etcdFlags, "--key-file", keyFile)...)
	if cred.OrgID != env.OrgID || len(cred.Roles) != 1 || cred.Roles[0] != policy.OrganizationAdministratorID {
		t.Fatalf("admin recover = %+v", cred)
	}
	// Another process wrote it: the running broker sees it once its watch
	// delivers the change (milliseconds; bounded here generously).
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+cred.Token)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := env.Tokens.CreateToken(ctx, &tbv1.CreateTokenRequest{Roles: []string{policy.OrganizationAdministratorID}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running broker never accepted the recovered token: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := r.ok("audit", "list")
	if !strings.Contains(res.stdout, "Admin.Recover") || !strings.Contains(res.stdout, "token:"+cred.ClientID) {
		t.Fatalf("no audit event for the recovery:\n%s", res.stdout)
	}
}
