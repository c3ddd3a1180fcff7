package policy

import (
	"strings"

	"github.com/tokenbroker/tokenbroker/store"
)

// Match reports whether pattern matches resource: same number of
// colon-separated segments, and each pattern segment is "*" or equal to the
// resource's. It compares strings only: OrgPlaceholder is not substituted (so
// an uncompiled default-role pattern matches only the literal placeholder),
// and an empty segment matches nothing. A "*" in resource is compared like
// any other value, so Match(q, p) also says whether pattern q covers pattern
// p. It does not allocate.
func Match(pattern, resource string) bool {
	for {
		pi := strings.IndexByte(pattern, ':')
		ri := strings.IndexByte(resource, ':')
		if (pi < 0) != (ri < 0) {
			return false // different depth
		}
		pseg, rseg := pattern, resource
		if pi >= 0 {
			pseg, rseg = pattern[:pi], resource[:ri]
		}
		if !segmentMatch(pseg, rseg) {
			return false
		}
		if pi < 0 {
			return true
		}
		pattern, resource = pattern[pi+1:], resource[ri+1:]
	}
}

func segmentMatch(pat, res string) bool {
	if res == "" || pat == "" {
		return false
	}
	return pat == "*" || pat == res
}

// compiled is one resource pattern split into segments once, so that Allows
// only scans the resource string.
type compiled struct {
	raw  string // after substitution; reported by Covers
	segs []string
}

// matches reports whether c matches resource, which has n segments.
func (c compiled) matches(resource string, n int) bool {
	if len(c.segs) != n {
		return false
	}
	last := len(c.segs) - 1
	for i, seg := range c.segs {
		part := resource
		if i < last {
			j := strings.IndexByte(resource, ':')
			if j < 0 {
				return false // cannot happen when n is right; stay safe
			}
			part, resource = resource[:j], resource[j+1:]
		}
		if !segmentMatch(seg, part) {
			return false
		}
	}
	return true
}

// covers reports whether c matches every resource that p matches.
func (c compiled) covers(p compiled) bool {
	if len(c.segs) != len(p.segs) {
		return false
	}
	for i, seg := range c.segs {
		if !segmentMatch(seg, p.segs[i]) {
			return false
		}
	}
	return true
}

// compilePattern validates raw and substitutes OrgPlaceholder in the org
// position. ok is false when the pattern grants nothing: it is invalid, or it
// uses the placeholder and orgID cannot stand in for it.
func compilePattern(orgID, raw string) (c compiled, ok bool) {
	if ValidateResource(raw) != nil {
		return compiled{}, false
	}
	segs := strings.Split(raw, ":")
	if segs[3] == OrgPlaceholder {
		// The org ID is server configuration, not user input, so any plain
		// identifier is accepted (tests use short ones); but "*", "" or a
		// value with ":" would widen or reshape every default role.
		if orgID == "*" || valueProblem("organization id", orgID) != "" {
			return compiled{}, false
		}
		segs[3] = orgID
		raw = strings.Join(segs, ":")
	}
	return compiled{raw: raw, segs: segs}, true
}

// Set is the compiled union of a caller's roles: which actions are allowed
// on which resource patterns. It is immutable once built and safe for
// concurrent use. The nil *Set allows nothing.
type Set struct {
	orgID string
	// byAction maps an action to the patterns it is allowed on, with
	// duplicates and patterns subsumed by another one removed.
	byAction map[string][]compiled
}

// Compile builds the Set granted by roles in organization orgID. It
// substitutes OrgPlaceholder with orgID, ignores roles whose Effect is not
// exactly EffectAllow, and drops patterns that fail ValidateResource (see the
// package documentation for why). Unknown actions are kept: they are simply
// never asked for.
func Compile(orgID string, roles []store.Role) *Set {
	s := &Set{orgID: orgID, byAction: make(map[string][]compiled)}
	for _, r := range roles {
		if r.Effect != EffectAllow {
			continue
		}
		pats := make([]compiled, 0, len(r.Resources))
		for _, raw := range r.Resources {
			if c, ok := compilePattern(orgID, raw); ok {
				pats = append(pats, c)
			}
		}
		if len(pats) == 0 {
			continue
		}
		for _, a := range r.Actions {
			s.byAction[a] = append(s.byAction[a], pats...)
		}
	}
	for a, pats := range s.byAction {
		s.byAction[a] = reduce(pats)
	}
	return s
}

// reduce drops patterns covered by another pattern of the list (keeping the
// first of equal ones): many roles share the same patterns, and Allows scans
// the list linearly.
func reduce(pats []compiled) []compiled {
	out := make([]compiled, 0, len(pats))
	for i, p := range pats {
		redundant := false
		for j, q := range pats {
			if i != j && q.covers(p) && (!p.covers(q) || j < i) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, p)
		}
	}
	return out
}

// Allows reports whether the set allows action on resource, a concrete DRN
// (a "*" in it is compared literally). It runs on every RPC: it does not
// allocate.
func (s *Set) Allows(action, resource string) bool {
	if s == nil {
		return false
	}
	pats := s.byAction[action]
	if len(pats) == 0 {
		return false
	}
	n := strings.Count(resource, ":") + 1
	for _, p := range pats {
		if p.matches(resource, n) {
			return true
		}
	}
	return false
}

// Covers reports whether every (action, resource pattern) pair that r grants
// is also granted by s, so that a caller holding s may grant r without
// escalating its privileges. r's patterns are compiled with s's org ID. A
// pattern p of r is covered by a pattern q of s with the same depth whose
// segments are each "*" or equal to p's; a "*" in p is covered only by "*".
//
// When r is not covered, Covers returns the first missing pair (in r's
// action order, then resource order) for the error message. A role whose
// Effect is not allow grants nothing and is always covered. An invalid
// pattern in r is reported as missing rather than skipped: this is a
// security check, so it fails closed on data it cannot interpret.
func (s *Set) Covers(r store.Role) (missingAction, missingResource string, ok bool) {
	if r.Effect != EffectAllow {
		return "", "", true
	}
	orgID := ""
	if s != nil {
		orgID = s.orgID
	}
	pats := make([]compiled, len(r.Resources))
	valid := make([]bool, len(r.Resources))
	for i, raw := range r.Resources {
		pats[i], valid[i] = compilePattern(orgID, raw)
	}
	for _, a := range r.Actions {
		var held []compiled
		if s != nil {
			held = s.byAction[a]
		}
		for i, p := range pats {
			if !valid[i] {
				return a, r.Resources[i], false
			}
			if !coveredBy(held, p) {
				return a, p.raw, false
			}
		}
	}
	return "", "", true
}

func coveredBy(held []compiled, p compiled) bool {
	for _, q := range held {
		if q.covers(p) {
			return true
		}
	}
	return false
}
