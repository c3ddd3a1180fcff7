package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/gateway"
	"github.com/tokenbroker/tokenbroker/server/pulsarjwt"
)

// Paths of the OIDC discovery documents on the REST port. Pulsar's
// AuthenticationProviderOpenID fetches <iss>/.well-known/openid-configuration
// and then its jwks_uri, and reads only issuer and jwks_uri (reference §3).
const (
	pathOIDCConfig = "/.well-known/openid-configuration"
	pathJWKS       = "/.well-known/jwks.json"
)

// oidcRoutes serves the discovery document and the JWKS. They are public
// by nature (verifiers fetch them without credentials) and hold only
// public keys.
func oidcRoutes(b *broker.Broker) []gateway.Route {
	issuer := b.Issuer() // verbatim: it must equal the tokens' iss exactly
	jwksURI := strings.TrimSuffix(issuer, "/") + pathJWKS
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		// Verifiers cache these; a short max-age keeps rotation visible.
		w.Header().Set("Cache-Control", "public, max-age=300")
		_ = json.NewEncoder(w).Encode(v)
	}
	return []gateway.Route{
		{Method: http.MethodGet, Path: pathOIDCConfig, Handler: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, map[string]any{
				"issuer":                                issuer,
				"jwks_uri":                              jwksURI,
				"id_token_signing_alg_values_supported": []string{"RS256"},
				"subject_types_supported":               []string{"public"},
				"response_types_supported":              []string{"id_token"},
			})
		}},
		{Method: http.MethodGet, Path: pathJWKS, Handler: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, pulsarjwt.JWKS(b.JWKS()...))
		}},
	}
}
