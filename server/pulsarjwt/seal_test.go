package pulsarjwt

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func sealKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestSealOpenRoundTrip(t *testing.T) {
	key := sealKey(1)
	rsaDER, err := MarshalPrivateKey(testKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"tenant secret", vectorSecret(), []byte("tenant-secret:acme")},
		{"rsa private key", rsaDER, []byte("rsa-key:acme:kid-1")},
		{"empty plaintext", []byte{}, []byte("x")},
		{"no aad", []byte("a secret sealed without aad"), nil}, // long enough that random bytes cannot contain it by chance
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := Seal(key, tc.plaintext, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != 1+12+len(tc.plaintext)+16 || sealed[0] != 1 {
				t.Fatalf("layout: len %d, version %d", len(sealed), sealed[0])
			}
			if len(tc.plaintext) > 0 && bytes.Contains(sealed, tc.plaintext) {
				t.Fatal("plaintext visible in sealed data")
			}
			got, err := Open(key, sealed, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Fatal("round trip changed the plaintext")
			}
			again, _ := Seal(key, tc.plaintext, tc.aad)
			if bytes.Equal(again, sealed) {
				t.Fatal("two seals of the same plaintext are equal (nonce reuse?)")
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	key := sealKey(1)
	aad := []byte("tenant-secret:acme")
	sealed, err := Seal(key, vectorSecret(), aad)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name   string
		key    []byte
		sealed []byte
		aad    []byte
	}
	cases := []tc{
		{"wrong key", sealKey(2), sealed, aad},
		{"short key", key[:16], sealed, aad},
		{"long key", append(sealKey(1), 0), sealed, aad},
		{"wrong aad (other tenant)", key, sealed, []byte("tenant-secret:acme2")},
		{"wrong aad (other purpose)", key, sealed, []byte("rsa-key:acme")},
		{"missing aad", key, sealed, nil},
		{"appended byte", key, append(append([]byte{}, sealed...), 0), aad},
		{"empty", key, nil, aad},
	}
	for i := range sealed {
		b := append([]byte{}, sealed...)
		b[i] ^= 0x80
		cases = append(cases, tc{"flipped byte", key, b, aad})
	}
	for n := range len(sealed) {
		cases = append(cases, tc{"truncated", key, sealed[:n], aad})
	}
	// A "version 2" blob built from a valid body must not open either.
	v2 := append([]byte{}, sealed...)
	v2[0] = 2
	cases = append(cases, tc{"other version", key, v2, aad})

	for _, c := range cases {
		if pt, err := Open(c.key, c.sealed, c.aad); err == nil {
			t.Errorf("%s (len %d): opened to %x", c.name, len(c.sealed), pt)
		}
	}
	if _, err := Seal(key[:31], []byte("x"), nil); err == nil {
		t.Error("Seal accepted a 31-byte key")
	}
}

func TestSealRandomKeys(t *testing.T) {
	for range 20 {
		key := make([]byte, 32)
		pt := make([]byte, 64)
		rand.Read(key)
		rand.Read(pt)
		s, err := Seal(key, pt, []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Open(key, s, []byte("a")); err != nil || !bytes.Equal(got, pt) {
			t.Fatal("round trip failed")
		}
	}
}
