package credential

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, accepts exactly the AstraCS shape, and a
// token it accepts round-trips to its client ID.
func FuzzParse(f *testing.F) {
	good := TokenFor(strings.Repeat("a", ClientIDLen), "secret")
	for _, s := range []string{
		good, "", "AstraCS:", "AstraCS:\x00", "AstraCS:\xff\xfe", strings.Repeat("A", 5000),
		good[:len(good)-1] + "G", good[:len(good)-1] + "\x00", strings.ToUpper(good),
		"Bearer " + good, good + " ", "AstraCS:" + strings.Repeat("é", 12) + good[len(Prefix)+ClientIDLen:],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := Parse(token)
		if err != nil {
			if id != "" {
				t.Fatalf("Parse(%q) = %q with error %v", token, id, err)
			}
			return
		}
		if len(token) != TokenLen || !strings.HasPrefix(token, Prefix) || !ValidClientID(id) {
			t.Fatalf("Parse accepted %q (client ID %q)", token, id)
		}
		if token[len(Prefix):len(Prefix)+ClientIDLen] != id {
			t.Fatalf("Parse(%q) = %q, not the token's client ID", token, id)
		}
		for _, c := range []byte(token[len(Prefix)+ClientIDLen+1:]) {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				t.Fatalf("Parse accepted a non-hex secret part in %q", token)
			}
		}
	})
}
