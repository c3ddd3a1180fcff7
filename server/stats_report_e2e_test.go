package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/tokenbroker/tokenbroker/server/servertest"
)

// TestLargestStatsReport: a namespace-statistics report of 1,000
// namespaces, the most one call may carry (docs/pulsar.md), over 20
// tenants is stored whole, on every backend (on etcd it is more operations
// than one transaction holds: the store splits it). The same report with
// one unknown tenant is 404 and stores nothing; one more namespace is 400.
// TOKENBROKER_TEST_STORE=etcd runs it over etcd.
func TestLargestStatsReport(t *testing.T) {
	env := servertest.Start(t)
	const tenants, namespaces = 20, 1000
	names := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("report-%02d", i)
		peCreateTenant(t, env, names[i], "")
	}
	report := func(in int) []map[string]any {
		out := make([]map[string]any, namespaces)
		for i := range out {
			out[i] = map[string]any{"tenant": names[i%tenants], "namespace": fmt.Sprintf("ns-%04d", i),
				"messagesIn": in + i, "msgRateIn": 1.5, "storageSize": 10}
		}
		return out
	}
	post := func(what string, stats []map[string]any, want int) {
		t.Helper()
		code, raw, _ := env.REST(t, http.MethodPost, "/v2/stats/namespaces", env.AdminToken, map[string]any{"stats": stats})
		peWantCode(t, what, code, raw, want)
	}
	// wantStored checks every tenant's namespaces, with messagesIn in+i.
	wantStored := func(what string, in int) {
		t.Helper()
		for ti, tenant := range names {
			code, raw, _ := env.REST(t, http.MethodGet, "/v2/stats/namespaces/"+tenant, env.AdminToken, nil)
			peWantCode(t, what+": GET stats of "+tenant, code, raw, http.StatusOK)
			var got map[string]struct {
				TotalMessagesIn int `json:"totalMessagesIn"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("%s: GET stats of %s: %v in %s", what, tenant, err, raw)
			}
			if len(got) != namespaces/tenants {
				t.Fatalf("%s: tenant %s has %d namespaces, want %d", what, tenant, len(got), namespaces/tenants)
			}
			for i := ti; i < namespaces; i += tenants {
				key := fmt.Sprintf("%s/ns-%04d", tenant, i)
				if u, ok := got[key]; !ok || u.TotalMessagesIn != in+i {
					t.Fatalf("%s: %s holds %+v (present %v), want totalMessagesIn %d", what, key, u, ok, in+i)
				}
			}
		}
	}

	post("a report of 1,000 namespaces", report(0), http.StatusOK)
	wantStored("after the report", 0)
	post("the same report again, changed", report(5000), http.StatusOK)
	wantStored("after the second report", 5000)

	unknown := report(9000)
	unknown[namespaces-1]["tenant"] = "zz-no-such-tenant"
	post("a report of 1,000 namespaces, one of an unknown tenant", unknown, http.StatusNotFound)
	wantStored("after the refused report", 5000)

	over := append(report(0), map[string]any{"tenant": names[0], "namespace": "one-more"})
	post("a report of 1,001 namespaces", over, http.StatusBadRequest)
}
