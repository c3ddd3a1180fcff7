package broker

import (
	"context"
	"errors"

	"github.com/tokenbroker/tokenbroker/store"
)

// What the broker keeps beside the store lives in its view (server/view),
// which every backend keeps current from its own change feed, this
// process's writes included, before each write returns. So the domain
// writes to the store and reads back through the view the same way on
// every backend: there is no step after a write that updates a cache, and
// nothing here depends on whether other brokers share the store.
// Credentials themselves (tokens, auth tokens, Pulsar token records) are
// not cached in the view: every check reads them from the store.

// caughtUp reports whether a lookup that found nothing should be repeated:
// with a shared store the record may have been written by another broker
// an instant ago, so before a management call answers "not found" the
// store's view is brought up to date (one round trip, only on this path;
// view.CatchUp is false for a store only this process writes). Not for the
// credential-check path, which never waits on the network.
func (b *Broker) caughtUp(ctx context.Context, err error) bool {
	return errors.Is(err, store.ErrNotFound) && b.view.CatchUp(ctx)
}
