package linearizability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/linearizability"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

var (
	flagDuration = flag.Duration("linz.duration", 0, "how long the workload runs (default 10s; 60s with -linz.crash)")
	flagClients  = flag.Int("linz.clients", 16, "concurrent clients")
	flagCrash    = flag.Bool("linz.crash", os.Getenv("TOKENBROKER_LINZ_CRASH") != "",
		"run TestCrash: the real binary, SIGKILLed and restarted while the workload runs (or set TOKENBROKER_LINZ_CRASH=1)")
	flagKillEvery = flag.Duration("linz.kill-every", 3*time.Second, "with -linz.crash: mean time between SIGKILLs")
)

// checkTimeout bounds porcupine; histories are partitioned per token, so
// each partition is small and the check takes well under a second.
const checkTimeout = 5 * time.Minute

func duration(def time.Duration) time.Duration {
	if *flagDuration > 0 {
		return *flagDuration
	}
	if testing.Short() {
		return 3 * time.Second
	}
	return def
}

// op builds one operation of a hand-made history.
func op(client int, verb linearizability.Verb, key string, res linearizability.Result, call, ret int64) porcupine.Operation {
	if res == linearizability.Unknown {
		ret = linearizability.Never
	}
	return porcupine.Operation{
		ClientId: client, Call: call, Return: ret,
		Input:  linearizability.Input{Verb: verb, Key: key},
		Output: linearizability.Output{Result: res},
	}
}

// TestCheckerFindsViolation feeds the checker the history of a refused
// delete answered before the concurrent delete it depended on was
// visible: delete → 200 and delete → 404 overlap, and a Check that starts
// after the 404 returned still finds the token live. No serial order
// explains it; the checker must say so and write a visualisation.
func TestCheckerFindsViolation(t *testing.T) {
	const k = "app:HcgCwdNCxxxxxxxxxxxxxxxx"
	const (
		create = linearizability.Create
		del    = linearizability.Delete
		check  = linearizability.CheckCred
	)
	bad := []porcupine.Operation{
		op(0, create, k, linearizability.OK, 22034222610, 22047042099),
		op(11, del, k, linearizability.OK, 22060629936, 22070176184),
		op(13, del, k, linearizability.NotFound, 22061974804, 22064892044),
		op(2, check, k, linearizability.Valid, 22065610335, 22066249246),
	}
	v, err := linearizability.Check(bad, checkTimeout, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != porcupine.Illegal {
		t.Fatalf("checker says %s for a non-linearizable history", v.Result)
	}
	if fi, err := os.Stat(v.Visualization); err != nil || fi.Size() == 0 {
		t.Fatalf("visualisation %q: %v", v.Visualization, err)
	}

	// The same calls are fine when the Check says invalid, or when the
	// 404 came after the 200.
	okHistories := map[string][]porcupine.Operation{
		"check invalid": {bad[0], bad[1], bad[2], op(2, check, k, linearizability.Invalid, 22065610335, 22066249246)},
		"404 after 200": {bad[0], op(11, del, k, linearizability.OK, 22060000000, 22061000000), bad[2],
			op(2, check, k, linearizability.Invalid, 22065610335, 22066249246)},
	}
	for name, h := range okHistories {
		if v, err := linearizability.Check(h, checkTimeout, t.TempDir()); err != nil || v.Result != porcupine.Ok {
			t.Errorf("%s: checker says %s (%v), want Ok", name, v.Result, err)
		}
	}
}

// TestUnknownOutcomes: a delete whose outcome is unknown may take effect
// at any time after its call, or be seen never; it cannot undo what a
// Check saw before it was called.
func TestUnknownOutcomes(t *testing.T) {
	const k = "pulsar:0f0e"
	const (
		create = linearizability.Create
		del    = linearizability.Delete
		check  = linearizability.CheckCred
	)
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"valid then invalid after an unknown delete", []porcupine.Operation{
			op(0, create, k, linearizability.OK, 0, 10),
			op(1, del, k, linearizability.Unknown, 20, 0),
			op(2, check, k, linearizability.Valid, 30, 40),
			op(2, check, k, linearizability.Invalid, 50, 60),
			op(3, del, k, linearizability.NotFound, 70, 80),
		}, porcupine.Ok},
		{"never applied", []porcupine.Operation{
			op(0, create, k, linearizability.OK, 0, 10),
			op(1, del, k, linearizability.Unknown, 20, 0),
			op(2, check, k, linearizability.Valid, 1000, 1010),
		}, porcupine.Ok},
		{"invalid before the unknown delete was called", []porcupine.Operation{
			op(0, create, k, linearizability.OK, 0, 10),
			op(2, check, k, linearizability.Invalid, 12, 15),
			op(1, del, k, linearizability.Unknown, 20, 0),
		}, porcupine.Illegal},
		{"valid after invalid", []porcupine.Operation{
			op(0, create, k, linearizability.OK, 0, 10),
			op(1, del, k, linearizability.Unknown, 20, 0),
			op(2, check, k, linearizability.Invalid, 30, 40),
			op(2, check, k, linearizability.Valid, 50, 60),
		}, porcupine.Illegal},
	}
	for _, c := range cases {
		v, err := linearizability.Check(c.ops, checkTimeout, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if v.Result != c.want {
			t.Errorf("%s: %s, want %s", c.name, v.Result, c.want)
		}
	}
}

// TestOneBroker runs the workload against one real broker over bbolt
// (gRPC and REST on loopback, a bbolt file in a temporary directory) and
// checks the history.
func TestOneBroker(t *testing.T) {
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.PulsarTokenLimit = 1_000_000 }))
	tenant := createTenant(t, env.HTTPBase, env.AdminToken)
	cfg := linearizability.Config{
		Endpoints:  []string{env.HTTPBase},
		AdminToken: env.AdminToken,
		OrgID:      env.OrgID,
		Tenant:     tenant,
		Clients:    *flagClients,
		Duration:   duration(10 * time.Second),
		SourceIPs:  true,
	}
	h := linearizability.NewHistory()
	if err := linearizability.Run(context.Background(), cfg, h); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, h, false)
}

// checkHistory checks h and fails the test, naming the visualisation, on
// a violation. It also fails a history too thin to mean anything.
func checkHistory(t *testing.T, h *linearizability.History, wantUnknown bool) {
	t.Helper()
	ops := h.Operations()
	began := time.Now()
	v, err := linearizability.Check(ops, checkTimeout, "")
	if err != nil {
		t.Error(err)
	}
	t.Logf("history: %s; linearizable: %s (checked in %s)", v.Stats, v.Result, time.Since(began).Round(time.Millisecond))
	if v.Result != porcupine.Ok {
		t.Errorf("history is not linearizable (%s); visualisation: %s", v.Result, v.Visualization)
	}
	for _, verb := range []linearizability.Verb{linearizability.Create, linearizability.Delete, linearizability.CheckCred} {
		if v.Stats.ByVerb[verb] == 0 {
			t.Errorf("history holds no %s operation: the workload did not run", verb)
		}
	}
	if wantUnknown && v.Stats.Unknown == 0 {
		t.Logf("no operation had an unknown outcome: no kill hit a call in flight")
	}
}

// createTenant creates the streaming tenant the workload's Pulsar tokens
// belong to.
func createTenant(t *testing.T, base, admin string) string {
	t.Helper()
	const name = "linz"
	body, _ := json.Marshal(map[string]string{"tenantName": name, "clusterName": "linz-cluster"})
	req, err := http.NewRequest(http.MethodPost, base+"/v2/streaming/tenants", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create tenant: HTTP %d", resp.StatusCode)
	}
	return name
}
