// Package linearizability checks that a running broker (or several
// replicas behind one store) behaves like a single copy of its state that
// changes atomically at one instant inside each call: the property clients
// rely on when a revoked token must stop working.
//
// A workload (Run) drives concurrent clients over REST against a list of
// endpoints: they create, delete and Check application tokens and, when a
// streaming tenant is given, Pulsar tokens. History records every call with
// its call and return times. Check hands the history to porcupine with a
// model of one token (absent, live, deleted), partitioned by token, and
// reports whether some serial order explains every answer.
//
// A call whose outcome the client cannot know (a timeout, a connection
// error, a broker killed mid-call, a 5xx) is recorded with an unknown
// output and a return time at the end of the history, so the checker may
// place its effect at any moment after its call, or never observe it. A
// create with an unknown outcome names no token and a Check that failed
// observed nothing, so both are left out.
package linearizability

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// Verb is what an operation does to a token.
type Verb uint8

// Verbs.
const (
	Create Verb = iota + 1
	Delete
	CheckCred // a Check of the token as a credential
)

func (v Verb) String() string {
	switch v {
	case Create:
		return "create"
	case Delete:
		return "delete"
	case CheckCred:
		return "check"
	}
	return fmt.Sprintf("verb(%d)", uint8(v))
}

// Result is what the client saw.
type Result uint8

// Results.
const (
	// OK: a create or delete succeeded.
	OK Result = iota + 1
	// NotFound: a delete answered 404.
	NotFound
	// Valid: Check accepted the credential (allowed, or denied only for
	// lack of permission: either way the token is live).
	Valid
	// Invalid: Check answered CREDENTIAL_INVALID.
	Invalid
	// Unknown: no answer the client can rely on; the call may or may not
	// have taken effect, at any time after it was made.
	Unknown
)

func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case NotFound:
		return "404"
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Input is an operation on one token. Key names the token and its kind
// ("app:<clientId>", "pulsar:<id>"); it is the partition.
type Input struct {
	Verb Verb
	Key  string
}

// Output is the operation's result.
type Output struct {
	Result Result
	// Detail is shown in the visualisation (status code, error text).
	Detail string
}

// state of one token.
type state uint8

const (
	absent state = iota
	live
	deleted
)

func (s state) String() string {
	return [...]string{"absent", "live", "deleted"}[s]
}

// step is the sequential specification of one token. Tokens get fresh
// random identifiers, so a deleted token never comes back.
func step(s state, in Input, out Output) (bool, state) {
	switch in.Verb {
	case Create:
		// Only a create that answered names its token; an unknown one
		// recorded anyway is one that may apply at any time.
		return s == absent && (out.Result == OK || out.Result == Unknown), live
	case Delete:
		switch out.Result {
		case OK:
			return s == live, deleted
		case NotFound:
			return s != live, s
		case Unknown:
			if s == live {
				return true, deleted
			}
			return true, s
		}
	case CheckCred:
		switch out.Result {
		case Valid:
			return s == live, s
		case Invalid:
			return s != live, s
		}
	}
	return false, s
}

// Model is the porcupine model of the broker's tokens: one partition per
// token, each a state machine absent → live → deleted.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return absent },
	Step: func(st, in, out any) (bool, any) {
		return step(st.(state), in.(Input), out.(Output))
	},
	Equal: func(a, b any) bool { return a.(state) == b.(state) },
	DescribeOperation: func(in, out any) string {
		i, o := in.(Input), out.(Output)
		s := fmt.Sprintf("%s %s -> %s", i.Verb, short(i.Key), o.Result)
		if o.Detail != "" {
			s += " (" + o.Detail + ")"
		}
		return s
	},
	DescribeState: func(st any) string { return st.(state).String() },
}

// short abbreviates a token key for the visualisation.
func short(key string) string {
	if len(key) > 20 {
		return key[:20] + "…"
	}
	return key
}
