package linearizability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker/server/policy"
)

// Config is a workload.
type Config struct {
	// Endpoints are REST base URLs ("http://127.0.0.1:8080"); every
	// operation goes to one chosen at random, so the replicas of a cluster
	// are checked as one system.
	Endpoints []string
	// AdminToken creates and deletes the tokens (an Organization
	// Administrator's application token); OrgID is its organization.
	AdminToken string
	OrgID      string
	// Tenant, when set, is an existing streaming tenant: the clients then
	// also create, delete and Check its Pulsar tokens. Its live-token
	// limit must be high enough for the run (tokens whose delete had an
	// unknown outcome may stay live).
	Tenant string
	// Clients is the number of concurrent clients (default 16).
	Clients int
	// Duration is how long clients start new operations (default 10 s).
	Duration time.Duration
	// RequestTimeout bounds each call (default 10 s); a call that times
	// out has an unknown outcome.
	RequestTimeout time.Duration
	// SourceIPs makes client i connect from 127.0.0.(2+i), so that the
	// broker's per-address budget of failed Checks (which deleted tokens
	// spend) is per client. Loopback endpoints only.
	SourceIPs bool
	// Seed seeds the operation mix (0: random).
	Seed uint64
}

func (c *Config) defaults() error {
	if len(c.Endpoints) == 0 || c.AdminToken == "" || c.OrgID == "" {
		return errors.New("linearizability: Endpoints, AdminToken and OrgID are required")
	}
	if c.Clients <= 0 {
		c.Clients = 16
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return nil
}

// token is one the workload knows: created and answered.
type token struct {
	key    string // the partition key
	id     string // client ID or Pulsar token ID
	cred   string // what Check is given
	pulsar bool
}

// pool holds the most recently created tokens, shared by every client so
// that deletes and Checks of one token race each other (two deletes of
// one token in one batch is what the checker must see handled).
type pool struct {
	mu   sync.Mutex
	toks []token
}

const poolSize = 16

func (p *pool) add(t token) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.toks = append(p.toks, t)
	if len(p.toks) > poolSize {
		p.toks = p.toks[len(p.toks)-poolSize:]
	}
}

func (p *pool) pick(r *rand.Rand, pulsar bool) (token, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var cands []token
	for _, t := range p.toks {
		if t.pulsar == pulsar {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		return token{}, false
	}
	// Favour the newest: they are the live ones worth racing on.
	i := len(cands) - 1 - min(r.IntN(len(cands)), r.IntN(len(cands)))
	return cands[i], true
}

// Run drives cfg.Clients clients for cfg.Duration (or until ctx ends) and
// records every operation in h. Operations in flight at the end are
// waited for (each is bounded by RequestTimeout).
func Run(ctx context.Context, cfg Config, h *History) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var p pool
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		c, err := newClient(cfg, i)
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer c.http.CloseIdleConnections()
			r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
			for ctx.Err() == nil {
				c.step(ctx, r, &p, h)
			}
		})
	}
	wg.Wait()
	return nil
}

// client is one sequential client.
type client struct {
	id   int
	cfg  Config
	http *http.Client
	// backoff is set when a call could not reach the broker.
	backoff bool
}

func newClient(cfg Config, i int) (*client, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if cfg.SourceIPs {
		if i > 250 {
			return nil, fmt.Errorf("linearizability: %d clients do not fit 127.0.0.2-252", cfg.Clients)
		}
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
	}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}
	return &client{id: i, cfg: cfg, http: &http.Client{Transport: tr, Timeout: cfg.RequestTimeout}}, nil
}

// step runs one random operation. The workload's own context ending does
// not cut calls short: the history needs their real outcomes.
func (c *client) step(ctx context.Context, r *rand.Rand, p *pool, h *History) {
	pulsar := c.cfg.Tenant != "" && r.IntN(3) == 0
	x := r.IntN(100)
	t, ok := p.pick(r, pulsar)
	switch {
	case x < 20 || !ok:
		c.create(p, h, pulsar)
	case x < 45:
		c.delete(h, t)
	default:
		c.check(h, t)
	}
	if ctx.Err() == nil && c.backoff {
		// The broker is down (a crash test restarting it): do not spin.
		c.backoff = false
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Role held by the workload's application tokens, and what their Checks
// ask: either answer (allowed, or denied for lack of permission) means the
// credential is live.
const (
	workloadRole  = policy.RWSvcAcctID
	checkAction   = "db-table-select"
	checkDatabase = "00000000-0000-4000-8000-000000000000"
)

func (c *client) create(p *pool, h *History, pulsar bool) {
	var path string
	var body any
	if pulsar {
		path, body = "/v3/streaming/tenants/"+c.cfg.Tenant+"/tokens", map[string]any{}
	} else {
		path, body = "/v2/clientIdSecrets", map[string]any{"roles": []string{workloadRole}}
	}
	call := h.Now()
	code, raw, err := c.do(http.MethodPost, path, c.cfg.AdminToken, body)
	ret := h.Now()
	if err != nil || code/100 != 2 {
		return // no token named: nothing to record
	}
	var resp struct {
		ClientID string `json:"clientId"`
		ID       string `json:"id"`
		Token    string `json:"token"`
	}
	if json.Unmarshal(raw, &resp) != nil || resp.Token == "" {
		return
	}
	t := token{id: resp.ClientID, cred: resp.Token, pulsar: pulsar}
	if pulsar {
		t.id = resp.ID
		t.key = "pulsar:" + resp.ID
	} else {
		t.key = "app:" + resp.ClientID
	}
	if t.id == "" {
		return
	}
	h.Add(c.id, Input{Verb: Create, Key: t.key}, Output{Result: OK}, call, ret)
	p.add(t)
}

func (c *client) delete(h *History, t token) {
	path := "/v2/clientIdSecrets/" + t.id
	if t.pulsar {
		path = "/v2/streaming/tenants/" + c.cfg.Tenant + "/tokens/" + t.id
	}
	call := h.Now()
	code, _, err := c.do(http.MethodDelete, path, c.cfg.AdminToken, nil)
	ret := h.Now()
	out := Output{Result: Unknown}
	switch {
	case err != nil:
		out.Detail = err.Error()
	case code/100 == 2:
		out.Result = OK
	case code == http.StatusNotFound:
		out.Result = NotFound
	default:
		out.Detail = fmt.Sprintf("HTTP %d", code)
	}
	h.Add(c.id, Input{Verb: Delete, Key: t.key}, out, call, ret)
}

func (c *client) check(h *History, t token) {
	body := map[string]string{"credential": t.cred}
	if t.pulsar {
		body["resource"] = policy.StreamDRN(c.cfg.OrgID, c.cfg.Tenant)
	} else {
		body["action"] = checkAction
		body["resource"] = policy.DatabaseDRN(c.cfg.OrgID, checkDatabase) + ":keyspace:ks:table:t"
	}
	call := h.Now()
	code, raw, err := c.do(http.MethodPost, "/v1/auth/check", "", body)
	ret := h.Now()
	if err != nil || code != http.StatusOK {
		return // observed nothing (down, or throttled)
	}
	var resp struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	}
	if json.Unmarshal(raw, &resp) != nil {
		return
	}
	out := Output{Result: Valid}
	switch {
	case resp.Allowed:
	case resp.Reason == "PERMISSION_DENIED":
		out.Detail = "denied"
	case resp.Reason == "CREDENTIAL_INVALID":
		out.Result = Invalid
	default:
		return
	}
	h.Add(c.id, Input{Verb: CheckCred, Key: t.key}, out, call, ret)
}

// do sends one JSON call to a random endpoint. An error means no HTTP
// answer arrived.
func (c *client) do(method, path, bearer string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	base := c.cfg.Endpoints[rand.IntN(len(c.cfg.Endpoints))]
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.backoff = true
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.backoff = true
		return 0, nil, err
	}
	if resp.StatusCode >= 500 {
		c.backoff = true
	}
	return resp.StatusCode, raw, nil
}
