package pulsarjwt

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The reference's vectors (docs/pulsar-tokens.md §1.1), byte for byte.
func TestSignHS256PlainVectors(t *testing.T) {
	secret := vectorSecret()
	if got, want := DataURL(secret), "data:;base64,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; got != want {
		t.Fatalf("DataURL = %q, want broker setting %q", got, want)
	}
	for _, tc := range []struct {
		name        string
		sub         string
		exp         int64
		want        string
		wantPayload string
	}{
		{"no expiry", "test-user", 0,
			"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXVzZXIifQ.2_F0GxpuAXaEAoplgLMnHeFjw6MlYt51dXQ5GnNfvfg",
			`{"sub":"test-user"}`},
		{"with exp", "test-user", 4102444800,
			"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXVzZXIiLCJleHAiOjQxMDI0NDQ4MDB9.9wYRRKaAbNLHoW3Jz_xXJCdeAnbp4jDvFzP2zYncpkI",
			`{"sub":"test-user","exp":4102444800}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SignHS256Plain(secret, tc.sub, tc.exp)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("token\n got %s\nwant %s", got, tc.want)
			}
			if h := decodePart(t, got, 0); h != `{"alg":"HS256"}` {
				t.Errorf("header = %s", h)
			}
			if p := decodePart(t, got, 1); p != tc.wantPayload {
				t.Errorf("payload = %s, want %s", p, tc.wantPayload)
			}
			// Our own parser and verifier accept it...
			tok, err := Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if err := tok.VerifyHS256(secret); err != nil {
				t.Fatal(err)
			}
			if tok.Alg != "HS256" || tok.Kid != "" || tok.Typ != "" || tok.Claims != (Claims{Sub: tc.sub, Exp: tc.exp}) {
				t.Errorf("parsed %+v / %+v", tok, tok.Claims)
			}
			// ...and so does an independent implementation.
			jt, err := jwt.Parse(got, func(*jwt.Token) (any, error) { return secret, nil },
				jwt.WithValidMethods([]string{"HS256"}))
			if err != nil || !jt.Valid {
				t.Fatalf("golang-jwt: %v", err)
			}
			if sub, _ := jt.Claims.GetSubject(); sub != tc.sub {
				t.Errorf("golang-jwt sub = %q", sub)
			}
		})
	}
}

// The Pulsar docs' example token (secret unknown) has exactly the header and
// payload bytes we emit for role "Joe".
func TestSignHS256PlainDocsExampleShape(t *testing.T) {
	const docs = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJKb2UifQ.ipevRNuRP6HflG8cFKnmUPtypruRC4fb1DWtoLL62SY"
	got, err := SignHS256Plain(vectorSecret(), "Joe", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := docs[:strings.LastIndexByte(docs, '.')]; got[:strings.LastIndexByte(got, '.')] != want {
		t.Fatalf("signing input %q, want docs' %q", got, want)
	}
	tok, err := Parse(docs)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Alg != "HS256" || tok.Claims.Sub != "Joe" || len(tok.Raw) != 1 {
		t.Errorf("docs token parsed as %+v", tok)
	}
	if err := tok.VerifyHS256(vectorSecret()); !errors.Is(err, errSignature) {
		t.Errorf("docs token with our test secret: %v, want signature error", err)
	}
}

func TestSignHS256PlainEscaping(t *testing.T) {
	secret := vectorSecret()
	for _, tc := range []struct{ sub, payload string }{
		{`a"b\c`, `{"sub":"a\"b\\c"}`},
		// No HTML escaping, raw UTF-8, '/' unescaped: what Jackson writes.
		{"<tenant>&ns/é\u2028", "{\"sub\":\"<tenant>&ns/é\u2028\"}"},
	} {
		tok, err := SignHS256Plain(secret, tc.sub, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p := decodePart(t, tok, 1); p != tc.payload {
			t.Errorf("payload %s, want %s", p, tc.payload)
		}
		jt, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return secret, nil }, jwt.WithValidMethods([]string{"HS256"}))
		if err != nil {
			t.Fatal(err)
		}
		if sub, _ := jt.Claims.GetSubject(); sub != tc.sub {
			t.Errorf("golang-jwt sub = %q, want %q", sub, tc.sub)
		}
	}
}

func TestSignHS256PlainRejects(t *testing.T) {
	pubDER, err := PublicDER(&testKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		sub    string
		exp    int64
	}{
		{"31-byte secret", vectorSecret()[:31], "u", 0},
		{"nil secret", nil, "u", 0},
		{"public key DER as secret", pubDER, "u", 0},
		{"public key PEM as secret", []byte(PublicPEM(pubDER)), "u", 0},
		{"empty sub", vectorSecret(), "", 0},
		{"negative exp", vectorSecret(), "u", -1},
		{"control char in sub", vectorSecret(), "a\nb", 0},
		{"DEL in sub", vectorSecret(), "a\x7fb", 0},
		{"invalid UTF-8 sub", vectorSecret(), "a\xffb", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := SignHS256Plain(tc.secret, tc.sub, tc.exp); err == nil {
				t.Fatalf("signed %q", tok)
			}
		})
	}
}

// A JWKS consumer's view: fetch {"keys":[...]}, pick the JWK by the token's
// kid, rebuild the key from n/e.
func keyFromJWKS(t *testing.T, jwks []byte, kid string) *rsa.PublicKey {
	t.Helper()
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range doc.Keys {
		if k["kid"] != kid {
			continue
		}
		if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" {
			t.Fatalf("JWK %v", k)
		}
		n, err := base64.RawURLEncoding.DecodeString(k["n"])
		if err != nil {
			t.Fatal(err)
		}
		e, err := base64.RawURLEncoding.DecodeString(k["e"])
		if err != nil {
			t.Fatal(err)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	t.Fatalf("no JWK with kid %q", kid)
	return nil
}

func TestSignRS256VerifiesWithGolangJWT(t *testing.T) {
	key := testKey()
	kid, err := KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	c := Claims{
		Sub:     "acme-app-1",
		Iss:     "https://tokens.example.internal/tenants/acme",
		Aud:     "pulsar-cluster-1",
		Iat:     now - 10,
		Nbf:     now - 10,
		Exp:     now + 3600,
		TokenID: "0b0e6c3a-54b2-4a8e-9a43-2a5f0d6ac9e1",
	}
	tok, err := SignRS256(key, kid, c)
	if err != nil {
		t.Fatal(err)
	}
	if h, want := decodePart(t, tok, 0), `{"alg":"RS256","kid":"`+kid+`","typ":"JWT"}`; h != want {
		t.Errorf("header %s, want %s", h, want)
	}
	wantPayload := `{"sub":"acme-app-1","iss":"https://tokens.example.internal/tenants/acme","aud":"pulsar-cluster-1",` +
		`"iat":` + itoa(c.Iat) + `,"nbf":` + itoa(c.Nbf) + `,"exp":` + itoa(c.Exp) + `,"tokenid":"0b0e6c3a-54b2-4a8e-9a43-2a5f0d6ac9e1"}`
	if p := decodePart(t, tok, 1); p != wantPayload {
		t.Errorf("payload\n got %s\nwant %s", p, wantPayload)
	}
	if again, _ := SignRS256(key, kid, c); again != tok {
		t.Error("SignRS256 is not deterministic")
	}

	der, err := PublicDER(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	fromDER, err := ParsePublicDER(der)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(JWKS(PublicJWK(kid, &key.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		key  func(*jwt.Token) *rsa.PublicKey
	}{
		{"public key DER (tokenPublicKey)", func(*jwt.Token) *rsa.PublicKey { return fromDER }},
		{"JWKS n/e by kid (OIDC)", func(jt *jwt.Token) *rsa.PublicKey {
			k, _ := jt.Header["kid"].(string)
			return keyFromJWKS(t, jwks, k)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var used *rsa.PublicKey
			jt, err := jwt.Parse(tok, func(jt *jwt.Token) (any, error) { used = tc.key(jt); return used, nil },
				jwt.WithValidMethods([]string{"RS256"}),
				jwt.WithIssuer(c.Iss), jwt.WithAudience(c.Aud), jwt.WithSubject(c.Sub),
				jwt.WithIssuedAt(), jwt.WithExpirationRequired(), jwt.WithNotBeforeRequired())
			if err != nil || !jt.Valid {
				t.Fatalf("golang-jwt rejected: %v", err)
			}
			if jt.Header["kid"] != kid || jt.Header["typ"] != "JWT" || jt.Header["alg"] != "RS256" || len(jt.Header) != 3 {
				t.Errorf("header seen by golang-jwt: %v", jt.Header)
			}
			mc := jt.Claims.(jwt.MapClaims)
			iat, _ := mc.GetIssuedAt()
			nbf, _ := mc.GetNotBefore()
			exp, _ := mc.GetExpirationTime()
			aud, _ := mc.GetAudience()
			iss, _ := mc.GetIssuer()
			if iat.Unix() != c.Iat || nbf.Unix() != c.Nbf || exp.Unix() != c.Exp || len(aud) != 1 || aud[0] != c.Aud ||
				iss != c.Iss || mc["tokenid"] != c.TokenID || len(mc) != 7 {
				t.Errorf("claims seen by golang-jwt: %v", mc)
			}
			// Our verifier agrees with the same key.
			pt, err := Parse(tok)
			if err != nil {
				t.Fatal(err)
			}
			if err := pt.VerifyRS256(used); err != nil {
				t.Fatal(err)
			}
			if pt.Claims != c || pt.Kid != kid || pt.Typ != "JWT" {
				t.Errorf("parsed claims %+v kid %q typ %q", pt.Claims, pt.Kid, pt.Typ)
			}
			if err := pt.Claims.ValidateTime(time.Now(), 0); err != nil {
				t.Error(err)
			}
		})
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func TestSignRS256OmitsZeroClaims(t *testing.T) {
	tok, err := SignRS256(testKey(), "k1", Claims{Sub: "r", Exp: 42})
	if err != nil {
		t.Fatal(err)
	}
	if p := decodePart(t, tok, 1); p != `{"sub":"r","exp":42}` {
		t.Errorf("payload %s", p)
	}
}

func TestSignRS256Rejects(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := Claims{Sub: "r"}
	for _, tc := range []struct {
		name string
		key  *rsa.PrivateKey
		kid  string
		c    Claims
	}{
		{"nil key", nil, "k", good},
		{"1024-bit key", small, "k", good},
		{"empty kid", testKey(), "", good},
		{"empty sub", testKey(), "k", Claims{Iss: "x"}},
		{"negative exp", testKey(), "k", Claims{Sub: "r", Exp: -1}},
		{"negative iat", testKey(), "k", Claims{Sub: "r", Iat: -1}},
		{"control char in iss", testKey(), "k", Claims{Sub: "r", Iss: "a\tb"}},
		{"invalid UTF-8 kid", testKey(), "\xc3", good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := SignRS256(tc.key, tc.kid, tc.c); err == nil {
				t.Fatalf("signed %q", tok)
			}
		})
	}
}

func TestSignRS256EscapedKid(t *testing.T) {
	tok, err := SignRS256(testKey(), `a"b`, Claims{Sub: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if h := decodePart(t, tok, 0); h != `{"alg":"RS256","kid":"a\"b","typ":"JWT"}` {
		t.Errorf("header %s", h)
	}
	pt, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if pt.Kid != `a"b` {
		t.Errorf("kid %q", pt.Kid)
	}
}
