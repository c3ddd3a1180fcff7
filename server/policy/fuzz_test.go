package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/tokenbroker/tokenbroker/store"
)

const fuzzOrg = "2c6b2a9a-9b3b-4c55-9d7b-0a0b7d1f1e11"

var drnSeeds = []string{
	"drn:astra:org:" + fuzzOrg,
	"drn:astra:org:" + fuzzOrg + ":db:*",
	"drn:astra:org:" + fuzzOrg + ":db:*:keyspace:*:table:*",
	"drn:astra:org:" + fuzzOrg + ":db:5b1d9a3e-1111-4222-8333-944455556666:keyspace:ks:table:t",
	"drn:astra:org:" + fuzzOrg + ":stream:acme",
	"drn:astra:org:" + fuzzOrg + ":role:*",
	"drn:astra:org:__ORG_ID__:db:*",
	"drn:astra:org:*", "drn:astra:org:" + fuzzOrg + ":db", "drn:astra:org:" + fuzzOrg + "::db",
	"drn:astra:org:" + fuzzOrg + ":db:\x00", "drn:astra:org:\xff", "", ":", "*", strings.Repeat(":", 50),
	"drn:astra:org:" + fuzzOrg + ":db:" + strings.Repeat("a", 5000),
}

// FuzzValidateResource: the DRN grammar never panics, and its message
// quotes the input rather than misreporting it.
func FuzzValidateResource(f *testing.F) {
	for _, s := range drnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		err := ValidateResource(pattern)
		if err == nil {
			if pattern == "" || strings.Contains(pattern, "::") || strings.ContainsAny(pattern, "\x00\n") {
				t.Fatalf("ValidateResource accepted %q", pattern)
			}
			if !strings.HasPrefix(pattern, "drn:astra:org:") {
				t.Fatalf("ValidateResource accepted %q without the DRN prefix", pattern)
			}
		}
	})
}

// FuzzMatch: Match agrees with a segment-by-segment reference, never
// matches an empty segment, and a valid pattern set allows a resource only
// if one of its patterns matches it.
func FuzzMatch(f *testing.F) {
	for i, p := range drnSeeds {
		f.Add(p, drnSeeds[(i+3)%len(drnSeeds)])
		f.Add(p, p)
	}
	f.Fuzz(func(t *testing.T, pattern, resource string) {
		got := Match(pattern, resource)
		ps, rs := strings.Split(pattern, ":"), strings.Split(resource, ":")
		want := len(ps) == len(rs)
		for i := 0; want && i < len(ps); i++ {
			want = ps[i] != "" && rs[i] != "" && (ps[i] == "*" || ps[i] == rs[i])
		}
		if got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, resource, got, want)
		}
		if ValidateResource(pattern) != nil {
			return
		}
		set := Compile(fuzzOrg, []store.Role{{ID: "r", Resources: []string{pattern}, Actions: []string{"db-table-select"}, Effect: EffectAllow}})
		allowed := set.Allows("db-table-select", resource)
		if allowed && !Match(strings.ReplaceAll(pattern, OrgPlaceholder, fuzzOrg), resource) {
			t.Fatalf("Allows(%q) under pattern %q without a match", resource, pattern)
		}
		if set.Allows("org-db-create", resource) {
			t.Fatalf("an action the role lacks was allowed on %q", resource)
		}
	})
}

// FuzzCoversSet: Covers (a stored role) and CoversSet (the role compiled)
// both answer what a direct reading of the rule gives: every (action,
// pattern) pair of the role, in order, is held on a pattern that matches
// it (Match compares a "*" literally, so it says whether one pattern
// covers another); an invalid pattern is never covered.
func FuzzCoversSet(f *testing.F) {
	for i, p := range drnSeeds {
		f.Add(p, drnSeeds[(i+5)%len(drnSeeds)], drnSeeds[(i+2)%len(drnSeeds)])
	}
	f.Fuzz(func(t *testing.T, heldPattern, granted1, granted2 string) {
		org := "drn:astra:org:" + fuzzOrg
		heldRoles := []store.Role{
			{ID: "h1", Resources: []string{heldPattern, org}, Actions: []string{"db-table-select", "org-read"}, Effect: EffectAllow},
			{ID: "h2", Resources: []string{granted2}, Actions: []string{"org-read"}, Effect: EffectAllow},
		}
		held := Compile(fuzzOrg, heldRoles)
		r := store.Role{ID: "r", Resources: []string{granted1, granted2}, Actions: []string{"org-read", "db-table-select", "org-read"}, Effect: EffectAllow}

		wantA, wantRes, wantOK := "", "", true
	check:
		for _, a := range r.Actions {
			for _, raw := range r.Resources {
				p := raw
				if ValidateResource(raw) == nil {
					p = substitute(raw)
				}
				covered := false
				for _, h := range heldRoles {
					for _, q := range h.Resources {
						if ValidateResource(raw) == nil && ValidateResource(q) == nil && slices.Contains(h.Actions, a) && Match(substitute(q), p) {
							covered = true
						}
					}
				}
				if !covered {
					wantA, wantRes, wantOK = a, p, false
					break check
				}
			}
		}
		a1, res1, ok1 := held.Covers(r)
		a2, res2, ok2 := held.CoversSet(Compile(fuzzOrg, []store.Role{r}))
		if a1 != wantA || res1 != wantRes || ok1 != wantOK || a2 != wantA || res2 != wantRes || ok2 != wantOK {
			t.Fatalf("Covers = (%q, %q, %v), CoversSet = (%q, %q, %v), want (%q, %q, %v)", a1, res1, ok1, a2, res2, ok2, wantA, wantRes, wantOK)
		}
	})
}

// substitute puts fuzzOrg in place of the placeholder in a valid pattern's
// org segment, as Compile does.
func substitute(pattern string) string {
	segs := strings.Split(pattern, ":")
	if segs[3] == OrgPlaceholder {
		segs[3] = fuzzOrg
	}
	return strings.Join(segs, ":")
}

// FuzzValidateText: free text is refused exactly when it is invalid
// UTF-8, too long, or holds a control character.
func FuzzValidateText(f *testing.F) {
	for _, s := range []string{"", "service A", "a\x00b", "\xff", "tab\there", "line\n", "é", strings.Repeat("x", 5000), "\u0085", "\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateText("description", s, 1024)
		if err != nil && !strings.HasPrefix(err.Error(), "description: ") {
			t.Fatalf("error %q does not name the field", err)
		}
		if err == nil {
			for _, r := range s {
				if r < 0x20 || (r >= 0x7f && r < 0xa0) {
					t.Fatalf("ValidateText accepted control character %U in %q", r, s)
				}
			}
		}
	})
}
