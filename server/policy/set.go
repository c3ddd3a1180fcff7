package policy

import (
	"slices"
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
	// grants are the roles the set was compiled from, in order, as Covers
	// reads a role: so that a compiled set can itself be checked for
	// coverage (CoversSet) without compiling its roles again.
	grants []grant
}

// grant is one allow role compiled for the escalation check: its actions
// and every one of its patterns in order, invalid ones included (segs nil,
// raw as stored), since the check fails closed on them.
type grant struct {
	actions []string
	pats    []compiled
}

// compileGrant compiles r's patterns with orgID; ok is false when r grants
// nothing (its Effect is not allow), so there is nothing to check.
func compileGrant(orgID string, r store.Role) (g grant, ok bool) {
	if r.Effect != EffectAllow {
		return grant{}, false
	}
	pats := make([]compiled, len(r.Resources))
	for i, raw := range r.Resources {
		c, valid := compilePattern(orgID, raw)
		if !valid {
			c = compiled{raw: raw} // segs nil: reported as missing
		}
		pats[i] = c
	}
	return grant{actions: r.Actions, pats: pats}, true
}

// Compile builds the Set granted by roles in organization orgID. It
// substitutes OrgPlaceholder with orgID, ignores roles whose Effect is not
// exactly EffectAllow, and drops patterns that fail ValidateResource (see the
// package documentation for why). Unknown actions are kept: they are simply
// never asked for.
func Compile(orgID string, roles []store.Role) *Set {
	s := &Set{orgID: orgID, byAction: make(map[string][]compiled)}
	for _, r := range roles {
		g, ok := compileGrant(orgID, r)
		if !ok {
			continue
		}
		g.actions = slices.Clone(g.actions) // immutable: the caller keeps r
		s.grants = append(s.grants, g)
		pats := make([]compiled, 0, len(g.pats))
		for _, c := range g.pats {
			if c.segs != nil {
				pats = append(pats, c)
			}
		}
		if len(pats) == 0 {
			continue
		}
		for _, a := range g.actions {
			s.byAction[a] = append(s.byAction[a], pats...)
		}
	}
	// Actions of one role share its patterns: after reduction, equal lists
	// become one shared slice, which coversGrant checks once per role.
	shared := map[string][]compiled{}
	for a, pats := range s.byAction {
		pats = reduce(pats)
		raws := make([]string, len(pats))
		for i, p := range pats {
			raws[i] = p.raw
		}
		key := strings.Join(raws, "\x00")
		if same, ok := shared[key]; ok {
			pats = same
		} else {
			shared[key] = pats
		}
		s.byAction[a] = pats
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
	g, ok := compileGrant(s.org(), r)
	if !ok {
		return "", "", true
	}
	return s.coversGrant(g)
}

// CoversSet reports what Covers reports for each role r was compiled from,
// in order, stopping at the first role not covered: the same check as
// Covers, on roles already compiled (the view keeps a compiled set per
// role, so the escalation check on a create compiles nothing). r must be
// compiled for s's organization, as Covers compiles a role; if it was not,
// its placeholders mean another organization and nothing of it is covered.
// A nil r grants nothing and is covered.
func (s *Set) CoversSet(r *Set) (missingAction, missingResource string, ok bool) {
	if r == nil {
		return "", "", true
	}
	held := s
	if r.orgID != s.org() {
		held = nil
	}
	for _, g := range r.grants {
		if a, res, ok := held.coversGrant(g); !ok {
			return a, res, false
		}
	}
	return "", "", true
}

func (s *Set) org() string {
	if s == nil {
		return ""
	}
	return s.orgID
}

// coversGrant is Covers on a compiled role.
func (s *Set) coversGrant(g grant) (missingAction, missingResource string, ok bool) {
	var checked []compiled // the last held list that covers all of g.pats
	for _, a := range g.actions {
		var held []compiled
		if s != nil {
			held = s.byAction[a]
		}
		if len(held) > 0 && len(held) == len(checked) && &held[0] == &checked[0] {
			continue // the same shared list (Compile): already checked
		}
		for _, p := range g.pats {
			if p.segs == nil || !coveredBy(held, p) {
				return a, p.raw, false
			}
		}
		checked = held
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
