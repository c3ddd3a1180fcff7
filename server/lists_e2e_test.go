package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/server/servertest"
)

type tokenListBody struct {
	Clients []struct {
		ClientID string   `json:"clientId"`
		Roles    []string `json:"roles"`
	} `json:"clients"`
	NextPageToken *string `json:"nextPageToken"`
}

// TestListTokensStreamsAndPages: with more tokens than one internal page,
// GET /v2/clientIdSecrets still answers every token in one Astra-shaped
// body (streamed page by page), paged clients can walk pageSize/pageToken
// to the same set, and bad paging input is a 400 naming the field.
func TestListTokensStreamsAndPages(t *testing.T) {
	env := servertest.Start(t)
	const n = 1150 // more than one internal page (1000)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	jobs := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				role := policy.RWUserID
				if i%10 == 0 {
					role = policy.DatabaseAdministratorID
				}
				if _, err := env.Tokens.CreateToken(env.GRPCCtx(env.AdminToken), &tbv1.CreateTokenRequest{Roles: []string{role}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("CreateToken: %v", err)
	}

	// gRPC without paging fields: the default page of 1000 and a token.
	want := grpcWalk(t, n+1, false, func(token string) ([]string, string, error) {
		resp, err := env.Tokens.ListTokens(env.GRPCCtx(env.AdminToken), &tbv1.ListTokensRequest{PageToken: token})
		var keys []string
		for _, c := range resp.GetClients() {
			keys = append(keys, c.GetClientId())
		}
		return keys, resp.GetNextPageToken(), err
	})
	sort.Strings(want)

	get := func(t *testing.T, query string) (int, tokenListBody, []byte) {
		t.Helper()
		code, raw, _ := env.REST(t, http.MethodGet, "/v2/clientIdSecrets"+query, env.AdminToken, nil)
		var body tokenListBody
		if code == http.StatusOK {
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("GET %s: body is not JSON (%v): %.200s", query, err, raw)
			}
		}
		return code, body, raw
	}
	ids := func(b tokenListBody) []string {
		out := make([]string, 0, len(b.Clients))
		for _, c := range b.Clients {
			out = append(out, c.ClientID)
		}
		return out
	}

	t.Run("unpaged: every token in one body, Astra's shape", func(t *testing.T) {
		code, body, raw := get(t, "")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, raw)
		}
		if body.NextPageToken != nil {
			t.Errorf("an unpaged answer carries nextPageToken")
		}
		got := ids(body)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("REST list (%d) differs from the gRPC list (%d)", len(got), len(want))
		}
	})

	t.Run("filter applies across pages", func(t *testing.T) {
		code, body, raw := get(t, "?role="+policy.DatabaseAdministratorID)
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, raw)
		}
		if len(body.Clients) != n/10 {
			t.Errorf("role filter: %d tokens, want %d", len(body.Clients), n/10)
		}
	})

	t.Run("paged: walking nextPageToken visits every token once", func(t *testing.T) {
		var got []string
		tok := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			q := "?pageSize=400"
			if tok != "" {
				q += "&pageToken=" + url.QueryEscape(tok)
			}
			code, body, raw := get(t, q)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, raw)
			}
			if len(body.Clients) > 400 {
				t.Fatalf("page of %d > pageSize", len(body.Clients))
			}
			if body.NextPageToken == nil {
				t.Fatal("a paged answer lacks nextPageToken")
			}
			got = append(got, ids(body)...)
			if tok = *body.NextPageToken; tok == "" {
				break
			}
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("paged walk (%d) differs from the list (%d)", len(got), len(want))
		}
	})

	t.Run("bad paging input is a 400 naming the field", func(t *testing.T) {
		for q, field := range map[string]string{"?pageSize=-1": "pageSize", "?pageToken=nonsense": "pageToken", "?pageSize=x": "pageSize"} {
			code, _, raw := get(t, q)
			if code != http.StatusBadRequest || !strings.Contains(string(raw), field) {
				t.Errorf("GET %s = %d %s, want 400 naming %s", q, code, raw, field)
			}
		}
	})

	t.Run("every page is authorized", func(t *testing.T) {
		if code, _, _ := env.REST(t, http.MethodGet, "/v2/clientIdSecrets", "", nil); code != http.StatusUnauthorized {
			t.Errorf("no credential: %d, want 401", code)
		}
		rw := env.CreateToken(t, env.AdminToken, policy.RWUserID)
		if code, _, _ := env.REST(t, http.MethodGet, "/v2/clientIdSecrets?pageSize=10", rw.Token, nil); code != http.StatusForbidden {
			t.Errorf("R/W user: %d, want 403", code)
		}
	})
}
