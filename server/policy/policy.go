// Package policy decides what a set of roles allows, with Astra's role model:
// a role is a list of actions allowed on a list of resource patterns (DRNs).
// A caller holds the union of (action, pattern) pairs of all its roles.
//
// # Resource names (DRN)
//
//	drn:astra:org:<org>
//	drn:astra:org:<org>:db:<db>
//	drn:astra:org:<org>:db:<db>:keyspace:<ks>
//	drn:astra:org:<org>:db:<db>:keyspace:<ks>:table:<t>
//	drn:astra:org:<org>:stream:<tenant>
//	drn:astra:org:<org>:role:<roleId>
//
// <org> is a lowercase UUID, "*" or the placeholder "__ORG_ID__" (default roles
// are shown with it, as Astra does). Every other value is "*" or 1 to 128
// characters of [A-Za-z0-9_.-]. A wildcard is a whole segment: "ab*" is an
// error, not a prefix match. Keywords (drn, astra, org, db, keyspace, table,
// stream, role) are literal and lowercase. No segment may be empty, so there is
// no trailing colon. ValidateResource enforces this with messages meant for
// API users.
//
// # Matching
//
// A pattern matches a resource when both have the same number of segments and
// every pattern segment is "*" or equal to the resource's segment. Depth is
// exact: drn:astra:org:X does not match drn:astra:org:X:db:1, and
// drn:astra:org:X:db:* does not match a keyspace of that database. The reason
// is compatibility: the Astra SDK always adds the bare org DRN to a
// database-scoped custom role, so if a parent implied its children every such
// role would silently cover the whole organization. Roles therefore list each
// level they cover explicitly, as the default roles do (org, db:*,
// db:*:keyspace:*, db:*:keyspace:*:table:*). Empty segments never match.
//
// # Compiling
//
// Compile builds an immutable Set from roles. It replaces the placeholder
// __ORG_ID__ in the org position of every pattern with the broker's org ID.
// A role whose Effect is not exactly "allow" grants nothing, and a pattern that
// does not pass ValidateResource is dropped: the store only holds validated
// roles, so either case means corrupt data, and the safe reading is "no grant".
// Set.Allows runs on every RPC and does not allocate.
//
// # Privilege escalation
//
// A caller may only hand out permissions it holds itself: Set.Covers reports
// whether every (action, resource pattern) pair a role grants is granted by the
// caller's Set. Pattern p is covered by a held pattern q with the same depth
// where each segment of q is "*" or equal to the segment of p. A "*" in p is
// therefore covered only by "*" in q: holding db:123 does not let a caller
// grant db:*. Set.CoversSet makes the same check on roles already compiled
// into a Set (which keeps its roles' patterns in order for it, invalid ones
// included), so a caller that keeps compiled sets compiles nothing per check.
package policy

import (
	"errors"
	"fmt"
	"strings"
)

// OrgPlaceholder is used in default roles' resources, as Astra shows it;
// Compile replaces it with the real org ID.
const OrgPlaceholder = "__ORG_ID__"

// EffectAllow is the only policy effect Astra defines.
const EffectAllow = "allow"

// Limits of a role specification. They bound the work of compiling a role and
// the size of a stored record; they are far above what Astra's default roles
// use (at most 54 actions and 6 resources).
const (
	maxNameLen        = 256
	maxDescriptionLen = 1024
	maxResources      = 100
	maxActions        = 200
	maxSegmentLen     = 128
)

const drnPrefix = "drn:astra:org:"

// OrgDRN returns the DRN of an organization: "drn:astra:org:<orgID>".
func OrgDRN(orgID string) string { return drnPrefix + orgID }

// DatabaseDRN returns the DRN of a database: "drn:astra:org:<orgID>:db:<dbID>".
func DatabaseDRN(orgID, dbID string) string { return drnPrefix + orgID + ":db:" + dbID }

// StreamDRN returns the DRN of a streaming tenant:
// "drn:astra:org:<orgID>:stream:<tenant>". Astra only shows ":stream:*"; the
// per-tenant form is our extension of the same grammar.
func StreamDRN(orgID, tenant string) string { return drnPrefix + orgID + ":stream:" + tenant }

// ValidateResource checks one DRN pattern against the grammar in the package
// documentation. The error text is shown to API users (as a 400), so it says
// exactly what is wrong, e.g.
// `resource "drn:astra:org:x:db": missing database id after "db"`.
func ValidateResource(pattern string) error {
	if msg := resourceProblem(pattern); msg != "" {
		return fmt.Errorf("resource %q: %s", pattern, msg)
	}
	return nil
}

// splitColons splits s on ':' into buf without allocating. It reports false
// if s has more segments than buf holds.
func splitColons(s string, buf []string) ([]string, bool) {
	n := 0
	for {
		i := strings.IndexByte(s, ':')
		if n == len(buf) {
			return nil, false
		}
		if i < 0 {
			buf[n] = s
			return buf[:n+1], true
		}
		buf[n], s = s[:i], s[i+1:]
		n++
	}
}

// resourceProblem returns what is wrong with pattern, or "" if it is valid.
func resourceProblem(pattern string) string {
	if !strings.HasPrefix(pattern, "drn:astra:org") {
		return `must start with "drn:astra:org:"`
	}
	if pattern == "drn:astra:org" {
		return `missing organization id after "org"`
	}
	if !strings.HasPrefix(pattern, drnPrefix) {
		// e.g. "drn:astra:organization:..."
		return `must start with "drn:astra:org:"`
	}
	if strings.HasSuffix(pattern, ":") {
		return "trailing colon"
	}
	// Split into a stack buffer: this runs on every Check. The deepest DRN
	// has 10 segments; anything beyond the buffer is too deep anyway.
	var buf [12]string
	segs, ok := splitColons(pattern, buf[:])
	if !ok {
		return "too many segments: a table (drn:astra:org:<org>:db:<db>:keyspace:<ks>:table:<t>) is the deepest level"
	}
	if msg := orgProblem(segs[3]); msg != "" {
		return msg
	}
	rest := segs[4:]
	if len(rest) == 0 {
		return ""
	}
	switch kw := rest[0]; kw {
	case "db":
		// db:<db>[:keyspace:<ks>[:table:<t>]]: walk the levels in order.
		levels := []struct{ keyword, what string }{
			{"db", "database id"},
			{"keyspace", "keyspace name"},
			{"table", "table name"},
		}
		prev := "organization id"
		for _, l := range levels {
			if len(rest) == 0 {
				return ""
			}
			if rest[0] != l.keyword {
				return fmt.Sprintf("unexpected %q after %s: want %q", rest[0], prev, l.keyword)
			}
			if len(rest) == 1 {
				return fmt.Sprintf("missing %s after %q", l.what, l.keyword)
			}
			if msg := valueProblem(l.what, rest[1]); msg != "" {
				return msg
			}
			prev, rest = l.what, rest[2:]
		}
		if len(rest) > 0 {
			return fmt.Sprintf("unexpected %q after table name: a table is the deepest level", rest[0])
		}
		return ""
	case "stream", "role":
		what := "tenant name"
		if kw == "role" {
			what = "role id"
		}
		if len(rest) == 1 {
			return fmt.Sprintf("missing %s after %q", what, kw)
		}
		if msg := valueProblem(what, rest[1]); msg != "" {
			return msg
		}
		if len(rest) > 2 {
			return fmt.Sprintf("unexpected %q after %s", rest[2], what)
		}
		return ""
	default:
		switch strings.ToLower(kw) {
		case "db", "stream", "role":
			return fmt.Sprintf("unknown resource type %q after organization id: keywords are lowercase", kw)
		}
		if kw == "" {
			return "empty segment after organization id"
		}
		return fmt.Sprintf(`unknown resource type %q after organization id: want "db", "stream" or "role"`, kw)
	}
}

func orgProblem(org string) string {
	switch {
	case org == "":
		return "empty organization id"
	case org == "*", org == OrgPlaceholder, isLowerUUID(org):
		return ""
	case strings.Contains(org, "*"):
		return fmt.Sprintf(`organization id %q: a wildcard must be the whole segment "*"`, org)
	case isUUIDAnyCase(org):
		// Matching is exact, so an uppercase ID would silently never match.
		return fmt.Sprintf("organization id %q: UUID must be lowercase", org)
	default:
		return fmt.Sprintf(`invalid organization id %q: want a UUID, "*" or %q`, org, OrgPlaceholder)
	}
}

// valueProblem checks a database id, keyspace, table, tenant or role id.
func valueProblem(what, v string) string {
	if v == "" {
		return "empty " + what
	}
	if v == "*" {
		return ""
	}
	if strings.Contains(v, "*") {
		return fmt.Sprintf(`%s %q: a wildcard must be the whole segment "*"`, what, v)
	}
	if len(v) > maxSegmentLen {
		return fmt.Sprintf("%s is longer than %d characters", what, maxSegmentLen)
	}
	for _, r := range v {
		if !isIdentRune(r) {
			return fmt.Sprintf(`%s %q: invalid character %q (allowed: letters, digits, "_", "." and "-")`, what, v, r)
		}
	}
	return ""
}

func isIdentRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
}

// isLowerUUID reports whether s is a UUID in canonical lowercase form
// (8-4-4-4-12 hex digits); version and variant bits are not checked, since
// Astra's IDs are ours to mirror, not to judge.
func isLowerUUID(s string) bool {
	return isUUIDForm(s, func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' })
}

func isUUIDAnyCase(s string) bool {
	return isUUIDForm(s, func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
	})
}

func isUUIDForm(s string, hex func(byte) bool) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !hex(s[i]) {
				return false
			}
		}
	}
	return true
}

// ValidateRoleSpec validates a role as a user submits it and returns the first
// problem found. The error text is user-facing and starts with the field it is
// about, in the JSON naming of the roles API (name, policy.description,
// policy.resources[i], policy.actions[i], policy.effect), e.g.
// `policy.actions[2]: unknown action "org-foo"`.
func ValidateRoleSpec(name, description string, resources, actions []string, effect string) error {
	if strings.TrimSpace(name) == "" {
		// A blank name is unusable in any listing; treat it as missing.
		return errors.New("name: must not be empty")
	}
	if err := ValidateText("name", name, maxNameLen); err != nil {
		return err
	}
	if err := ValidateText("policy.description", description, maxDescriptionLen); err != nil {
		return err
	}

	switch {
	case len(resources) == 0:
		return errors.New("policy.resources: at least one resource is required")
	case len(resources) > maxResources:
		return fmt.Errorf("policy.resources: at most %d resources are allowed, got %d", maxResources, len(resources))
	}
	for i, r := range resources {
		if err := ValidateResource(r); err != nil {
			return fmt.Errorf("policy.resources[%d]: %w", i, err)
		}
	}

	switch {
	case len(actions) == 0:
		return errors.New("policy.actions: at least one action is required")
	case len(actions) > maxActions:
		return fmt.Errorf("policy.actions: at most %d actions are allowed, got %d", maxActions, len(actions))
	}
	for i, a := range actions {
		if !KnownAction(a) {
			return fmt.Errorf("policy.actions[%d]: unknown action %q", i, a)
		}
	}

	if effect != EffectAllow {
		return fmt.Errorf("policy.effect: unsupported effect %q (allowed values: %q)", effect, EffectAllow)
	}
	return nil
}
