package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/metrics"
)

func TestObserverCountsWithoutAllocating(t *testing.T) {
	m := metrics.New()
	allocs := testing.AllocsPerRun(1000, func() {
		m.CheckDone(broker.CredentialAppToken, broker.CheckOutcomeAllowed)
	})
	if allocs != 0 {
		t.Errorf("CheckDone allocates %.1f times per call", allocs)
	}
	m.CheckDone(broker.CredentialAuthToken, broker.CheckOutcomeCredentialInvalid)
	m.CheckDone("something new", "unheard of") // counted, not dropped, not a panic
	m.LoginDone(broker.LoginOutcomeRefused)
	m.Throttled(broker.ThrottleCheck)
	m.OnCommit(7, 3*time.Millisecond)
	calls := 0
	m.WatchRecords(func() (map[string]int, error) {
		calls++
		return map[string]int{"application_token": 3}, nil
	}, time.Hour)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	body := func() string {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	text := body()
	for _, want := range []string{
		`tokenbroker_check_total{credential="application-token",outcome="allowed"} 1001`,
		`tokenbroker_check_total{credential="auth-token",outcome="credential_invalid"} 1`,
		`tokenbroker_check_total{credential="other",outcome="other"} 1`,
		`tokenbroker_login_total{outcome="refused"} 1`,
		`tokenbroker_throttled_total{limiter="check"} 1`,
		`tokenbroker_store_commit_batch_size_sum 7`,
		`tokenbroker_store_commit_duration_seconds_count 1`,
		`tokenbroker_stored_records{kind="application_token"} 3`,
		`tokenbroker_build_info{`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	body()
	if calls != 1 {
		t.Errorf("record counts computed %d times for two scrapes within maxAge, want 1", calls)
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if !strings.HasPrefix(p.Metric, "go_") && !strings.HasPrefix(p.Metric, "process_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}
