package store

import "errors"

// Sentinel errors. Backends wrap them with context (fmt.Errorf("...: %w",
// ErrNotFound)); callers test with errors.Is. They carry no transport
// meaning: server/rpcerr maps them to status codes at the edge.
var (
	// ErrNotFound: the record (or a record it references) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a record with that identifier exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInUse: the record is still referenced (a role held by a user or a
	// live token).
	ErrInUse = errors.New("in use")
	// ErrConflict: a concurrent writer won a compare-and-swap and retries ran
	// out (optimistic backends such as etcd).
	ErrConflict = errors.New("conflict")
	// ErrLimitReached: a quota would be exceeded (a tenant's token limit).
	ErrLimitReached = errors.New("limit reached")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable: the store cannot answer with data known to be
	// current (a shared store's local view fell behind its bound); the
	// call may succeed later.
	ErrUnavailable = errors.New("store unavailable")
	// ErrLastHolder: the delete would remove the last live token holding
	// a role that must keep one (DeleteTokenKeepingRole); nothing was
	// deleted.
	ErrLastHolder = errors.New("last live holder of the role")
)
