package broker

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies a domain error; server/rpcerr maps each kind to one gRPC
// code (and through it one HTTP status) in a single table.
type Kind uint8

const (
	KindInvalid            Kind = iota + 1 // bad input: InvalidArgument / 400
	KindUnauthenticated                    // missing, malformed, unknown, revoked or expired credential: 401
	KindPermissionDenied                   // valid credential lacking a permission: 403
	KindNotFound                           // 404
	KindAlreadyExists                      // 409
	KindFailedPrecondition                 // state forbids it (role in use, default role): 409
	KindExhausted                          // quota or rate limit: 429
)

// Reason codes name the specific condition; rpcerr attaches them to the
// status (and the Astra error ID they map to) so clients can tell apart two
// 401s without parsing text.
const (
	ReasonMissingToken   = "MISSING_TOKEN"
	ReasonMalformedToken = "INVALID_TOKEN_FORMAT"
	ReasonUnknownToken   = "TOKEN_NOT_FOUND" // unknown, revoked or expired: indistinguishable by design
	ReasonBadLogin       = "BAD_CREDENTIALS" // unknown user or wrong password: indistinguishable by design
)

// Error is a domain error whose Msg is safe to show to the caller: it never
// contains a secret, a token or a storage detail.
type Error struct {
	Kind   Kind
	Reason string // optional, one of the Reason constants
	Msg    string
	Err    error // optional cause, for logs only
	// RetryAfter, for KindExhausted: when the caller may try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func newErr(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Invalid returns a KindInvalid error with a user-facing message.
func Invalid(format string, args ...any) error { return newErr(KindInvalid, format, args...) }

// Denied returns a KindPermissionDenied error with a user-facing message.
func Denied(format string, args ...any) error { return newErr(KindPermissionDenied, format, args...) }

// NotFound returns a KindNotFound error with a user-facing message.
func NotFound(format string, args ...any) error { return newErr(KindNotFound, format, args...) }

// Unauthenticated returns a KindUnauthenticated error with a reason code.
func Unauthenticated(reason, msg string) error {
	return &Error{Kind: KindUnauthenticated, Reason: reason, Msg: msg}
}

// KindOf returns the kind of err, or 0 if it is not a domain error.
func KindOf(err error) Kind {
	if err == nil {
		return 0 // without an allocation for errors.As's target: Check asks on every call
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
