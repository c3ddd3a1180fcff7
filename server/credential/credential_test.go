package credential

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func TestNewHasAstraShape(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if !ValidClientID(c.ClientID) {
			t.Fatalf("client ID %q is not 24 ASCII letters", c.ClientID)
		}
		if len(c.Secret) < 43 { // 256 bits in base64
			t.Fatalf("secret too short: %d chars", len(c.Secret))
		}
		sum := sha256.Sum256([]byte(c.Secret))
		if want := Prefix + c.ClientID + ":" + hex.EncodeToString(sum[:]); c.Token != want || len(c.Token) != 97 {
			t.Fatalf("token %q, want %q (97 chars)", c.Token, want)
		}
		if id, err := Parse(c.Token); err != nil || id != c.ClientID {
			t.Fatalf("Parse(own token) = %q, %v", id, err)
		}
		if seen[c.ClientID] {
			t.Fatalf("duplicate client ID %q", c.ClientID)
		}
		seen[c.ClientID] = true
	}
}

func TestParseRejects(t *testing.T) {
	good := TokenFor("zjCEYwRGWocLfQJHBNQxvorr", "s")
	for name, tok := range map[string]string{
		"empty":         "",
		"short":         "AstraCS:abc",
		"prefix":        "AstraXX" + good[7:],
		"uppercase hex": good[:40] + strings.ToUpper(good[40:]),
		"digit in id":   good[:8] + "1" + good[9:],
		"missing colon": good[:32] + "x" + good[33:],
		"long":          good + "0",
	} {
		if _, err := Parse(tok); err != ErrMalformed {
			t.Errorf("%s: Parse(%q) err = %v, want ErrMalformed", name, tok, err)
		}
	}
}

func TestMAC(t *testing.T) {
	if _, err := NewMAC(make([]byte, 16)); err == nil {
		t.Fatal("NewMAC accepted a 16-byte key")
	}
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k2[0] = 1
	m1, _ := NewMAC(k1)
	m2, _ := NewMAC(k2)
	tok := TokenFor("zjCEYwRGWocLfQJHBNQxvorr", "secret")
	sum := m1.Sum(tok)
	if !m1.Verify(tok, sum) {
		t.Fatal("Verify rejected its own MAC")
	}
	if m2.Verify(tok, sum) {
		t.Fatal("a MAC under another key verified")
	}
	if m1.Verify(tok[:len(tok)-1]+"0", sum) && !strings.HasSuffix(tok, "0") {
		t.Fatal("a different token verified")
	}
	if strings.Contains(string(sum), tok) || len(sum) != 32 {
		t.Fatal("MAC leaks the token or has the wrong size")
	}
}

func BenchmarkVerify(b *testing.B) {
	m, _ := NewMAC(make([]byte, 32))
	tok := TokenFor("zjCEYwRGWocLfQJHBNQxvorr", "secret")
	sum := m.Sum(tok)
	b.ReportAllocs()
	for b.Loop() {
		m.Verify(tok, sum)
	}
}

// Client IDs sort by creation time (the store appends them to its indexes
// instead of scattering them), and the random part differs within one
// millisecond.
func TestClientIDsSortByCreationTime(t *testing.T) {
	base := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	prev := ""
	for i, at := range []time.Time{
		time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), // before the epoch: clamped
		base, base.Add(time.Millisecond), base.Add(time.Second), base.Add(24 * time.Hour),
		time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		id, err := newClientID(at)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidClientID(id) {
			t.Fatalf("client ID %q is not 24 ASCII letters", id)
		}
		if i > 0 && id[:clientIDTimeLetters] <= prev[:clientIDTimeLetters] {
			t.Errorf("ID for %v (%q) does not sort after the previous one (%q)", at, id, prev)
		}
		prev = id
	}
	a, _ := newClientID(base)
	b, _ := newClientID(base)
	if a[:clientIDTimeLetters] != b[:clientIDTimeLetters] || a == b {
		t.Errorf("two IDs in one millisecond: %q, %q: want the same time part and different random parts", a, b)
	}
}
