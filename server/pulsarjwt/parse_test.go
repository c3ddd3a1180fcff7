package pulsarjwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	vector1 = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXVzZXIifQ.2_F0GxpuAXaEAoplgLMnHeFjw6MlYt51dXQ5GnNfvfg"
	docsTok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJKb2UifQ.ipevRNuRP6HflG8cFKnmUPtypruRC4fb1DWtoLL62SY"
)

func TestParseRejects(t *testing.T) {
	sig := make([]byte, 32) // right length for HS256; Parse never checks it cryptographically
	hs := func(payload string) string { return mk(`{"alg":"HS256"}`, payload, sig) }
	v1 := strings.Split(vector1, ".")
	deep := `{"sub":"r","x":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`

	for _, tc := range []struct {
		name string
		tok  string
		want error // nil: any error
	}{
		// alg
		{"alg none, empty signature", enc(`{"alg":"none"}`) + "." + enc(`{"sub":"admin"}`) + ".", nil},
		{"alg none, with signature", mk(`{"alg":"none"}`, `{"sub":"admin"}`, sig), errAlg},
		{"alg missing", mk(`{"typ":"JWT"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg HS512", mk(`{"alg":"HS512"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg HS384", mk(`{"alg":"HS384"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg RS384", mk(`{"alg":"RS384"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg RS512", mk(`{"alg":"RS512"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg ES256", mk(`{"alg":"ES256"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg PS256", mk(`{"alg":"PS256"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg EdDSA", mk(`{"alg":"EdDSA"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg lower-case rs256", mk(`{"alg":"rs256"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg mixed-case Hs256", mk(`{"alg":"Hs256"}`, `{"sub":"r"}`, sig), errAlg},
		{"alg with space", mk(`{"alg":"HS256 "}`, `{"sub":"r"}`, sig), errAlg},
		{"alg empty", mk(`{"alg":""}`, `{"sub":"r"}`, sig), errAlg},
		{"alg null", mk(`{"alg":null}`, `{"sub":"r"}`, sig), errAlg},
		{"alg number", mk(`{"alg":256}`, `{"sub":"r"}`, sig), errAlg},
		{"alg array", mk(`{"alg":["HS256"]}`, `{"sub":"r"}`, sig), errAlg},
		{"alg key case ALG", mk(`{"ALG":"HS256"}`, `{"sub":"r"}`, sig), errAlg},
		{"duplicate alg", mk(`{"alg":"HS256","alg":"RS256"}`, `{"sub":"r"}`, sig), nil},
		{"duplicate alg via escape", mk(`{"alg":"RS256","\u0061lg":"HS256"}`, `{"sub":"r"}`, sig), nil},
		// header
		{"crit", mk(`{"alg":"HS256","crit":["exp"],"exp":1}`, `{"sub":"r"}`, sig), nil},
		{"crit empty", mk(`{"alg":"HS256","crit":[]}`, `{"sub":"r"}`, sig), nil},
		{"unencoded payload (b64 false)", mk(`{"alg":"HS256","b64":false,"crit":["b64"]}`, `{"sub":"r"}`, sig), nil},
		{"b64 without crit", mk(`{"alg":"HS256","b64":false}`, `{"sub":"r"}`, sig), nil},
		{"jku names a key", mk(`{"alg":"RS256","jku":"https://attacker.example/jwks.json"}`, `{"sub":"r"}`, sig), nil},
		{"x5u names a key", mk(`{"alg":"RS256","x5u":"https://attacker.example/cert.pem"}`, `{"sub":"r"}`, sig), nil},
		{"embedded jwk", mk(`{"alg":"HS256","jwk":{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}}`, `{"sub":"r"}`, sig), nil},
		{"kid number", mk(`{"alg":"HS256","kid":1}`, `{"sub":"r"}`, sig), nil},
		{"typ object", mk(`{"alg":"HS256","typ":{}}`, `{"sub":"r"}`, sig), nil},
		{"header array", mk(`["HS256"]`, `{"sub":"r"}`, sig), nil},
		{"header null", mk(`null`, `{"sub":"r"}`, sig), nil},
		{"header trailing object", mk(`{"alg":"HS256"}{}`, `{"sub":"r"}`, sig), nil},
		{"header trailing garbage", mk(`{"alg":"HS256"} x`, `{"sub":"r"}`, sig), nil},
		{"header not JSON", mk(`alg=HS256`, `{"sub":"r"}`, sig), nil},
		{"header invalid UTF-8", mk("{\"alg\":\"HS256\",\"x\":\"\xff\"}", `{"sub":"r"}`, sig), nil},
		// payload
		{"payload null", hs(`null`), nil},
		{"payload array", hs(`[{"sub":"r"}]`), nil},
		{"payload string", hs(`"r"`), nil},
		{"payload number", hs(`1`), nil},
		{"payload truncated", hs(`{"sub":"r"`), nil},
		{"payload trailing data", hs(`{"sub":"r"},`), nil},
		{"payload invalid UTF-8", hs("{\"sub\":\"\xc3\"}"), nil},
		{"duplicate sub", hs(`{"sub":"r","sub":"admin"}`), nil},
		{"duplicate sub via escape", hs(`{"sub":"r","s\u0075b":"admin"}`), nil},
		{"duplicate nested key", hs(`{"sub":"r","x":{"a":1,"a":2}}`), nil},
		{"nesting too deep", hs(deep), nil},
		// claim types
		{"sub number", hs(`{"sub":1}`), nil},
		{"sub array (Pulsar role array)", hs(`{"sub":["r"]}`), nil},
		{"iss object", hs(`{"sub":"r","iss":{}}`), nil},
		{"aud array", hs(`{"sub":"r","aud":["a","b"]}`), nil},
		{"tokenid number", hs(`{"sub":"r","tokenid":7}`), nil},
		{"exp fraction", hs(`{"sub":"r","exp":1.5}`), nil},
		{"exp 1.0", hs(`{"sub":"r","exp":1.0}`), nil},
		{"exp exponent", hs(`{"sub":"r","exp":1e10}`), nil},
		{"exp negative", hs(`{"sub":"r","exp":-5}`), nil},
		{"exp zero (would read as never-expires)", hs(`{"sub":"r","exp":0}`), nil},
		{"exp minus zero", hs(`{"sub":"r","exp":-0}`), nil},
		{"exp overflow", hs(`{"sub":"r","exp":9223372036854775808}`), nil},
		{"exp string", hs(`{"sub":"r","exp":"4102444800"}`), nil},
		{"exp bool", hs(`{"sub":"r","exp":true}`), nil},
		{"exp null", hs(`{"sub":"r","exp":null}`), nil},
		{"nbf fraction", hs(`{"sub":"r","nbf":1.25}`), nil},
		{"iat string", hs(`{"sub":"r","iat":"1"}`), nil},
		// encoding
		{"padding on payload", v1[0] + "." + enc(`{"sub":"test-user"}`) + "==." + v1[2], nil},
		{"padded header", base64.URLEncoding.EncodeToString([]byte(`{"alg":"HS256","x":"y"}`)) + "." + v1[1] + "." + v1[2], nil},
		{"std alphabet payload", v1[0] + "." + stdOnly(t, `{"sub":"??>>~~"}`) + "." + v1[2], nil},
		{"std alphabet signature", v1[0] + "." + v1[1] + "." + strings.NewReplacer("_", "/", "-", "+").Replace(v1[2]), nil},
		{"non-canonical trailing bits", v1[0] + "." + v1[1][:len(v1[1])-1] + "R" + "." + v1[2], nil},
		{"newline inside part", v1[0] + "." + v1[1][:5] + "\n" + v1[1][5:] + "." + v1[2], nil},
		{"CR inside signature", v1[0] + "." + v1[1] + "." + v1[2][:5] + "\r" + v1[2][5:], nil},
		{"space inside part", v1[0] + " ." + v1[1] + "." + v1[2], nil},
		{"impossible base64 length", v1[0] + "." + v1[1] + "." + v1[2] + "A", nil},
		// structure
		{"empty", "", nil},
		{"1 part", v1[0], nil},
		{"2 parts", v1[0] + "." + v1[1], nil},
		{"4 parts", vector1 + "." + v1[2], nil},
		{"JWE-like 5 parts", v1[0] + ".." + v1[1] + ".." + v1[2], nil},
		{"empty header", "." + v1[1] + "." + v1[2], nil},
		{"empty payload", v1[0] + ".." + v1[2], nil},
		{"empty signature", v1[0] + "." + v1[1] + ".", nil},
		{"HS256 signature too short", mk(`{"alg":"HS256"}`, `{"sub":"r"}`, sig[:31]), nil},
		{"HS256 signature too long", mk(`{"alg":"HS256"}`, `{"sub":"r"}`, append(sig, 0)), nil},
		{"over 8 KiB", mk(`{"alg":"HS256"}`, `{"sub":"r","x":"`+strings.Repeat("a", 8192)+`"}`, sig), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tc.tok)
			if err == nil {
				t.Fatalf("accepted: %+v", tok)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if tok != nil {
				t.Error("non-nil token with error")
			}
			assertNoLeak(t, err, tc.tok)
		})
	}
}

// stdOnly returns the unpadded std-alphabet encoding of s, which must contain
// '+' or '/' to be a meaningful test.
func stdOnly(t *testing.T, s string) string {
	e := base64.RawStdEncoding.EncodeToString([]byte(s))
	if !strings.ContainsAny(e, "+/") {
		t.Fatalf("%q encodes without +/ (%s)", s, e)
	}
	return e
}

func TestParseAccepts(t *testing.T) {
	sig := make([]byte, 32)
	for _, tc := range []struct {
		name    string
		tok     string
		claims  Claims
		checkFn func(t *testing.T, tok *Token)
	}{
		{"vector", vector1, Claims{Sub: "test-user"}, nil},
		{"docs example", docsTok, Claims{Sub: "Joe"}, nil},
		{"unknown header fields and claims kept in Raw",
			mk(`{"alg":"HS256","typ":"JWT","kid":"k","x-custom":{"a":[1,2]}}`,
				`{"sub":"r","iss":"i","aud":"a","iat":1,"nbf":2,"exp":3,"tokenid":"t","roles":["x"],"n":12345678901234567890,"f":1.5}`, sig),
			Claims{Sub: "r", Iss: "i", Aud: "a", Iat: 1, Nbf: 2, Exp: 3, TokenID: "t"},
			func(t *testing.T, tok *Token) {
				if tok.Kid != "k" || tok.Typ != "JWT" {
					t.Errorf("kid %q typ %q", tok.Kid, tok.Typ)
				}
				if tok.Raw["n"] != json.Number("12345678901234567890") || tok.Raw["f"] != json.Number("1.5") ||
					tok.Raw["exp"] != json.Number("3") || len(tok.Raw["roles"].([]any)) != 1 {
					t.Errorf("Raw = %#v", tok.Raw)
				}
			}},
		{"escaped claim names and values", mk(`{"alg":"HS256"}`, `{"s\u0075b":"\u0072\/x"}`, sig), Claims{Sub: "r/x"}, nil},
		{"whitespace in JSON", mk(" {\n\"alg\" : \"HS256\" }\n", ` { "sub" : "r" } `, sig), Claims{Sub: "r"}, nil},
		{"max int64 exp", mk(`{"alg":"HS256"}`, `{"sub":"r","exp":9223372036854775807}`, sig), Claims{Sub: "r", Exp: math.MaxInt64}, nil},
		{"case-variant claim name is not sub", mk(`{"alg":"HS256"}`, `{"SUB":"admin","sub":"r"}`, sig), Claims{Sub: "r"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tc.tok)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Claims != tc.claims {
				t.Errorf("claims %+v, want %+v", tok.Claims, tc.claims)
			}
			if tc.checkFn != nil {
				tc.checkFn(t, tok)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	key := testKey()
	pub := &key.PublicKey
	kid, _ := KeyID(pub)
	good, err := SignRS256(key, kid, Claims{Sub: "app", Iss: "https://i", Aud: "pulsar", Exp: 4102444800})
	if err != nil {
		t.Fatal(err)
	}
	gp := strings.Split(good, ".")
	pubDER, _ := PublicDER(pub)
	pubPEM := []byte(PublicPEM(pubDER))
	confusedHeader := `{"alg":"HS256","typ":"JWT","kid":"` + kid + `"}`
	admin := `{"sub":"admin","iss":"https://i","aud":"pulsar","exp":4102444800}`
	flip := func(s string, i int) string {
		b, _ := base64.RawURLEncoding.DecodeString(s)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	cut := func(s string, n int) string {
		b, _ := base64.RawURLEncoding.DecodeString(s)
		return base64.RawURLEncoding.EncodeToString(b[:len(b)-n])
	}
	hsTok, _ := SignHS256Plain(vectorSecret(), "app", 0)

	for _, tc := range []struct {
		name   string
		tok    string
		verify func(*Token) error
		want   error
	}{
		{"good RS256 (control)", good, func(t *Token) error { return t.VerifyRS256(pub) }, nil},
		{"good HS256 (control)", hsTok, func(t *Token) error { return t.VerifyHS256(vectorSecret()) }, nil},
		{"tampered payload: sub flipped to admin", gp[0] + "." + enc(strings.Replace(decodePart(t, good, 1), `"app"`, `"admin"`, 1)) + "." + gp[2],
			func(t *Token) error { return t.VerifyRS256(pub) }, errSignature},
		{"tampered payload: exp removed", gp[0] + "." + enc(`{"sub":"app","iss":"https://i","aud":"pulsar"}`) + "." + gp[2],
			func(t *Token) error { return t.VerifyRS256(pub) }, errSignature},
		{"tampered header: kid", enc(`{"alg":"RS256","typ":"JWT","kid":"other"}`) + "." + gp[1] + "." + gp[2],
			func(t *Token) error { return t.VerifyRS256(pub) }, errSignature},
		{"tampered signature", gp[0] + "." + gp[1] + "." + flip(gp[2], 100),
			func(t *Token) error { return t.VerifyRS256(pub) }, errSignature},
		{"truncated signature", gp[0] + "." + gp[1] + "." + cut(gp[2], 1),
			func(t *Token) error { return t.VerifyRS256(pub) }, errSignature},
		{"wrong RSA key", good, func(t *Token) error { return t.VerifyRS256(&otherKey().PublicKey) }, errSignature},
		{"nil RSA key", good, func(t *Token) error { return t.VerifyRS256(nil) }, errKey},
		{"RS256 token via VerifyHS256", good, func(t *Token) error { return t.VerifyHS256(vectorSecret()) }, errAlgMismatch},
		{"HS256 token via VerifyRS256", hsTok, func(t *Token) error { return t.VerifyRS256(pub) }, errAlgMismatch},
		// The classic alg-confusion attack: HMAC keyed with the public key.
		{"alg confusion (DER) via VerifyRS256", hsSign(pubDER, confusedHeader, admin),
			func(t *Token) error { return t.VerifyRS256(pub) }, errAlgMismatch},
		{"alg confusion (PEM) via VerifyRS256", hsSign(pubPEM, confusedHeader, admin),
			func(t *Token) error { return t.VerifyRS256(pub) }, errAlgMismatch},
		{"alg confusion with mutated t.Alg", hsSign(pubDER, confusedHeader, admin),
			func(t *Token) error { t.Alg = "RS256"; return t.VerifyRS256(pub) }, errAlgMismatch},
		// Even a caller that wrongly lets the header choose and hands over
		// the public key bytes is stopped.
		{"alg confusion (DER) via VerifyHS256", hsSign(pubDER, confusedHeader, admin),
			func(t *Token) error { return t.VerifyHS256(pubDER) }, errSecretIsPubKey},
		{"alg confusion (PEM) via VerifyHS256", hsSign(pubPEM, confusedHeader, admin),
			func(t *Token) error { return t.VerifyHS256(pubPEM) }, errSecretIsPubKey},
		{"HS256 wrong secret", hsTok, func(t *Token) error {
			s := vectorSecret()
			s[0] ^= 1
			return t.VerifyHS256(s)
		}, errSignature},
		{"HS256 short secret", hsSign(vectorSecret()[:16], `{"alg":"HS256"}`, `{"sub":"app"}`),
			func(t *Token) error { return t.VerifyHS256(vectorSecret()[:16]) }, errWeakSecret},
		{"HS256 tampered payload", strings.Split(hsTok, ".")[0] + "." + enc(`{"sub":"admin"}`) + "." + strings.Split(hsTok, ".")[2],
			func(t *Token) error { return t.VerifyHS256(vectorSecret()) }, errSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Parse(tc.tok)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = tc.verify(tok)
			if !errors.Is(err, tc.want) {
				t.Fatalf("verify: %v, want %v", err, tc.want)
			}
			assertNoLeak(t, err, tc.tok)
		})
	}

	// An independent implementation agrees on the alg-confusion token.
	if _, err := jwt.Parse(hsSign(pubDER, confusedHeader, admin), func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"RS256"})); err == nil {
		t.Error("golang-jwt accepted the alg-confusion token")
	}
}

func TestVerifyZeroToken(t *testing.T) {
	var nilTok *Token
	for _, tok := range []*Token{nilTok, {}, {Alg: "RS256"}, {Alg: "HS256"}} {
		if err := tok.VerifyRS256(&testKey().PublicKey); err == nil {
			t.Errorf("VerifyRS256 on %+v succeeded", tok)
		}
		if err := tok.VerifyHS256(vectorSecret()); err == nil {
			t.Errorf("VerifyHS256 on %+v succeeded", tok)
		}
	}
}

func TestValidateTime(t *testing.T) {
	const T = 1_700_000_000
	now := time.Unix(T, 0)
	late := time.Unix(T, 999_999_999) // same second, almost the next
	for _, tc := range []struct {
		name   string
		c      Claims
		now    time.Time
		leeway time.Duration
		want   error
	}{
		{"no time claims", Claims{Sub: "r"}, now, 0, nil},
		{"exp in future", Claims{Exp: T + 1}, now, 0, nil},
		{"exp in future, late in the second", Claims{Exp: T + 1}, late, 0, nil},
		{"exp == now is expired", Claims{Exp: T}, now, 0, errExpired},
		{"exp == now, late in the second", Claims{Exp: T}, late, 0, errExpired},
		{"exp in past", Claims{Exp: T - 1}, now, 0, errExpired},
		{"exp == now within 1s leeway", Claims{Exp: T}, now, time.Second, nil},
		{"exp 1s ago at 1s leeway", Claims{Exp: T - 1}, now, time.Second, errExpired},
		{"sub-second leeway is truncated", Claims{Exp: T}, now, 999 * time.Millisecond, errExpired},
		{"exp max int64", Claims{Exp: math.MaxInt64}, now, time.Hour, nil},
		{"nbf == now", Claims{Nbf: T}, now, 0, nil},
		{"nbf in past", Claims{Nbf: T - 100}, now, 0, nil},
		{"nbf 1s ahead", Claims{Nbf: T + 1}, now, 0, errNotYetValid},
		{"nbf 1s ahead within leeway", Claims{Nbf: T + 1}, now, time.Second, nil},
		{"nbf 2s ahead beyond leeway", Claims{Nbf: T + 2}, now, time.Second, errNotYetValid},
		{"nbf max int64", Claims{Nbf: math.MaxInt64}, now, time.Hour, errNotYetValid},
		{"iat == now", Claims{Iat: T}, now, 0, nil},
		{"iat 1s ahead", Claims{Iat: T + 1}, now, 0, errIssuedInFuture},
		{"iat 5s ahead within 5s leeway", Claims{Iat: T + 5}, now, 5 * time.Second, nil},
		{"iat 6s ahead beyond 5s leeway", Claims{Iat: T + 6}, now, 5 * time.Second, errIssuedInFuture},
		{"all valid", Claims{Iat: T - 10, Nbf: T - 10, Exp: T + 10}, now, 0, nil},
		{"negative leeway", Claims{}, now, -time.Second, nil /* any error */},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.ValidateTime(tc.now, tc.leeway)
			switch {
			case tc.leeway < 0:
				if err == nil {
					t.Fatal("negative leeway accepted")
				}
			case !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	rs, err := SignRS256(testKey(), "kid-1", Claims{Sub: "r", Iss: "https://i", Aud: "a", Iat: 1, Nbf: 1, Exp: 2, TokenID: "t"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		vector1, docsTok, rs, "", ".", "..", "a.b.c", "e30.e30.e30",
		mk(`{"alg":"HS256","crit":["x"]}`, `{"sub":"r"}`, make([]byte, 32)),
		mk(`{"alg":"HS256"}`, `{"sub":"r","x":[[[{"a":1}]]],"exp":1.5}`, make([]byte, 32)),
		mk(`{"alg":"RS256"}`, `{"sub":"r","sub":"s"}`, []byte{1}),
		strings.Repeat("A", 9000),
	} {
		f.Add(s)
	}
	secret := vectorSecret()
	pub := &testKey().PublicKey
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if tok != nil {
				t.Fatal("token with error")
			}
			if strings.Contains(s, ".") && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q contains the token", err)
			}
			return
		}
		if tok.Alg != "RS256" && tok.Alg != "HS256" {
			t.Fatalf("accepted alg %q", tok.Alg)
		}
		if tok.Claims.Exp < 0 || tok.Claims.Nbf < 0 || tok.Claims.Iat < 0 {
			t.Fatalf("negative time claim %+v", tok.Claims)
		}
		if tok.Claims.Sub != "" && tok.Raw["sub"] != tok.Claims.Sub {
			t.Fatalf("Claims.Sub %q disagrees with Raw %v", tok.Claims.Sub, tok.Raw["sub"])
		}
		_ = tok.VerifyRS256(pub)
		_ = tok.VerifyHS256(secret)
		_ = tok.Claims.ValidateTime(time.Now(), time.Minute)
	})
}

func BenchmarkSignRS256(b *testing.B) {
	key := testKey()
	c := Claims{Sub: "acme-app-1", Iss: "https://tokens.example.internal/tenants/acme", Aud: "pulsar-cluster-1",
		Iat: 1735689600, Nbf: 1735689600, Exp: 1735693200, TokenID: "0b0e6c3a-54b2-4a8e-9a43-2a5f0d6ac9e1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignRS256(key, "kid", c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRS256 measures Parse + VerifyRS256: what a request costs.
func BenchmarkVerifyRS256(b *testing.B) {
	key := testKey()
	s, err := SignRS256(key, "kid", Claims{Sub: "acme-app-1", Iss: "https://tokens.example.internal/tenants/acme",
		Aud: "pulsar-cluster-1", Iat: 1735689600, Nbf: 1735689600, Exp: 1735693200, TokenID: "t"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tok, err := Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		if err := tok.VerifyRS256(&key.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyHS256 measures Parse + VerifyHS256.
func BenchmarkVerifyHS256(b *testing.B) {
	secret := vectorSecret()
	b.ReportAllocs()
	for b.Loop() {
		tok, err := Parse(vector1)
		if err != nil {
			b.Fatal(err)
		}
		if err := tok.VerifyHS256(secret); err != nil {
			b.Fatal(err)
		}
	}
}
