// Package rpcerr is the one place where errors become gRPC statuses. Handlers
// and interceptors return every error through ToStatus; nothing else builds a
// status from a domain or storage error.
//
// Each status carries a google.rpc.ErrorInfo detail with the reason code and
// the Astra error ID, which the REST gateway copies into Astra's error body
// ({"errors":[{"ID":...,"message":...}]}).
package rpcerr

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/store"
)

// Domain names the error domain in ErrorInfo.
const Domain = "tokenbroker"

// MetadataAstraID is the ErrorInfo metadata key holding the Astra error ID.
const MetadataAstraID = "astraErrorId"

// kindCodes maps domain error kinds to gRPC codes.
var kindCodes = map[broker.Kind]codes.Code{
	broker.KindInvalid:            codes.InvalidArgument,
	broker.KindUnauthenticated:    codes.Unauthenticated,
	broker.KindPermissionDenied:   codes.PermissionDenied,
	broker.KindNotFound:           codes.NotFound,
	broker.KindAlreadyExists:      codes.AlreadyExists,
	broker.KindFailedPrecondition: codes.FailedPrecondition,
	broker.KindExhausted:          codes.ResourceExhausted,
}

// astraIDs: the error IDs Astra is known to use. Other errors
// use the HTTP status as their ID (see docs/errors.md).
var astraIDs = map[string]int{
	broker.ReasonMissingToken:   340012,
	broker.ReasonMalformedToken: 340012,
	broker.ReasonUnknownToken:   340018,
}

// ToStatus converts err to a gRPC status error. Domain errors keep their
// user-facing message; context errors pass through; anything else is logged
// with its cause and becomes Internal with a generic message, so storage or
// driver text never reaches a client.
func ToStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (e.g. from a nested call)
	}
	var de *broker.Error
	switch {
	case errors.As(err, &de):
		code, ok := kindCodes[de.Kind]
		if !ok {
			code = codes.Internal
		}
		st := withInfo(code, de.Msg, de.Reason)
		if de.RetryAfter > 0 {
			if withRetry, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(de.RetryAfter)}); err == nil {
				st = withRetry
			}
		}
		return st.Err()
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, store.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down")
	case errors.Is(err, store.ErrUnavailable):
		return status.Error(codes.Unavailable, "store unavailable: this replica's view is not known to be current; retry (another replica may answer)")
	case errors.Is(err, store.ErrConflict):
		return withInfo(codes.Aborted, "concurrent update; retry", "").Err()
	}
	if log != nil {
		log.ErrorContext(ctx, "internal error", "err", err)
	}
	return status.Error(codes.Internal, "internal error")
}

func withInfo(code codes.Code, msg, reason string) *status.Status {
	st := status.New(code, msg)
	if reason == "" {
		return st
	}
	info := &errdetails.ErrorInfo{Reason: reason, Domain: Domain}
	if id, ok := astraIDs[reason]; ok {
		info.Metadata = map[string]string{MetadataAstraID: strconv.Itoa(id)}
	}
	if withDetails, err := st.WithDetails(info); err == nil {
		st = withDetails
	}
	return st
}

// RetryAfter returns the retry delay carried by st, or 0.
func RetryAfter(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// AstraID returns the Astra error ID carried by st, or 0.
func AstraID(st *status.Status) int {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == Domain {
			if id, err := strconv.Atoi(info.Metadata[MetadataAstraID]); err == nil {
				return id
			}
		}
	}
	return 0
}
