package broker

import (
	"strings"

	"github.com/tokenbroker/tokenbroker/server/credential"
)

// Observer is told the outcome of the decisions operators alert on: every
// Check, every login, every throttle refusal. The broker calls it on the
// hot path, so an implementation must be cheap, must not block, and must be
// safe for concurrent use (server/metrics counts them in Prometheus
// counters resolved in advance). The label values passed are the constants
// below, never caller input.
type Observer interface {
	// CheckDone reports a Check: the presented credential's kind
	// (CredentialAppToken, CredentialAuthToken, CredentialPulsarJWT or
	// CredentialMalformed) and its outcome (a CheckOutcome* constant).
	CheckDone(credentialKind, outcome string)
	// LoginDone reports a login attempt's outcome (a LoginOutcome* constant).
	LoginDone(outcome string)
	// Throttled reports a call refused by a throttle (ThrottleLogin or
	// ThrottleCheck) because its budget of failures was spent.
	Throttled(limiter string)
}

// CredentialMalformed is the kind of a credential of no known shape.
const CredentialMalformed = "malformed"

// Check outcomes.
const (
	CheckOutcomeAllowed           = "allowed"
	CheckOutcomePermissionDenied  = "permission_denied"
	CheckOutcomeCredentialInvalid = "credential_invalid"
	CheckOutcomeThrottled         = "throttled"
	CheckOutcomeInvalidRequest    = "invalid_request"
	CheckOutcomeError             = "error"
)

// Login outcomes.
const (
	LoginOutcomeSuccess   = "success"
	LoginOutcomeRefused   = "refused" // unknown user or wrong password
	LoginOutcomeThrottled = "throttled"
	LoginOutcomeError     = "error"
)

// Throttles.
const (
	ThrottleLogin = "login"
	ThrottleCheck = "check"
)

// CheckOutcomes, LoginOutcomes, CredentialKinds and Throttles list every
// value the broker reports, so an observer can create its series up front.
var (
	CheckOutcomes   = []string{CheckOutcomeAllowed, CheckOutcomePermissionDenied, CheckOutcomeCredentialInvalid, CheckOutcomeThrottled, CheckOutcomeInvalidRequest, CheckOutcomeError}
	LoginOutcomes   = []string{LoginOutcomeSuccess, LoginOutcomeRefused, LoginOutcomeThrottled, LoginOutcomeError}
	CredentialKinds = []string{CredentialAppToken, CredentialAuthToken, CredentialPulsarJWT, CredentialMalformed}
	Throttles       = []string{ThrottleLogin, ThrottleCheck}
)

type noObserver struct{}

func (noObserver) CheckDone(string, string) {}
func (noObserver) LoginDone(string)         {}
func (noObserver) Throttled(string)         {}

// credentialKind classifies a presented credential by its shape (the same
// dispatch Authenticate and Check use), without verifying it.
func credentialKind(cred string) string {
	switch {
	case strings.HasPrefix(cred, credential.Prefix):
		return CredentialAppToken
	case isAuthTokenShape(cred):
		return CredentialAuthToken
	case isJWTShape(cred):
		return CredentialPulsarJWT
	default:
		return CredentialMalformed
	}
}

func checkOutcome(res CheckResult, err error) string {
	switch {
	case err == nil && res.Allowed:
		return CheckOutcomeAllowed
	case err == nil && res.Reason == CheckReasonPermissionDenied:
		return CheckOutcomePermissionDenied
	case err == nil:
		return CheckOutcomeCredentialInvalid
	}
	switch KindOf(err) {
	case KindExhausted:
		return CheckOutcomeThrottled
	case KindInvalid:
		return CheckOutcomeInvalidRequest
	default:
		return CheckOutcomeError
	}
}

func loginOutcome(err error) string {
	switch {
	case err == nil:
		return LoginOutcomeSuccess
	case KindOf(err) == KindExhausted:
		return LoginOutcomeThrottled
	case KindOf(err) == KindUnauthenticated:
		return LoginOutcomeRefused
	default:
		return LoginOutcomeError
	}
}
