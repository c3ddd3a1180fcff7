package server_test

import (
	"net/http"
	"testing"

	"github.com/tokenbroker/tokenbroker/server/servertest"
)

func TestPulsarProbe(t *testing.T) {
	env := servertest.Start(t)
	show := func(m, p string, body any) {
		code, raw, hdr := env.REST(t, m, p, env.AdminToken, body)
		t.Logf("%s %s -> %d %s %q", m, p, code, hdr.Get("Content-Type"), raw)
	}
	show("POST", "/v2/streaming/tenants", map[string]any{"tenantName": "acme", "clusterName": "c1"})
	show("POST", "/v2/streaming/tenants", map[string]any{"tenantName": "plain", "clusterName": "c1", "tokenFormat": "hs256"})
	show("POST", "/v2/streaming/tenants", map[string]any{"tenantName": "acme", "clusterName": "c1"})
	show("GET", "/v2/streaming/tenants", nil)
	show("GET", "/v2/streaming/tenants/acme", nil)
	show("GET", "/v2/streaming/tenants/nope", nil)
	show("POST", "/v2/streaming/tenants/acme/tokens?exp=2h", nil)
	show("POST", "/v2/streaming/tenants/plain/tokens", nil)
	show("POST", "/v3/streaming/tenants/acme/tokens", map[string]any{"exp": "1m"})
	show("GET", "/v2/streaming/tenants/acme/tokens", nil)
	show("GET", "/v2/streaming/tenants/acme/token-keys", nil)
	show("GET", "/v2/streaming/tenants/plain/token-keys", nil)
	show("DELETE", "/v2/streaming/tenants/plain", nil)
	show("DELETE", "/v2/streaming/tenants/acme/clusters/c1", nil)
	show("POST", "/v2/streaming/signing-keys/rotate", nil)
	show("GET", "/.well-known/openid-configuration", nil)
	show("GET", "/.well-known/jwks.json", nil)
	_ = http.MethodGet
}
