package broker

import (
	"context"
	"errors"

	"github.com/tokenbroker/tokenbroker/store"
)

// What the broker keeps in memory beside the store (compiled roles, the
// signing keys, the organization's token policy, the set of metered
// databases) must follow writes made by other brokers sharing the store.
// A store that is shared implements store.ChangeNotifier; the broker
// subscribes once and reloads the affected cache from the store (whose
// reads already include the change) for each batch of changes. Credentials
// themselves (tokens, auth tokens, Pulsar token records) are not cached
// here: every check reads them from the store, whose local view the same
// feed keeps current.

// subscribe starts following the store's change feed, if it has one.
func (b *Broker) subscribe() {
	n, ok := b.st.(store.ChangeNotifier)
	if !ok {
		return
	}
	b.shared = true
	b.unsubscribe = n.Subscribe(b.onChanges)
}

// Close stops following the store's change feed. The store itself is the
// caller's to close.
func (b *Broker) Close() {
	if b.unsubscribe != nil {
		b.unsubscribe()
	}
}

// onChanges reloads each cache a batch touches, once. It runs on the
// store's update path, so it only reads the store's local view.
func (b *Broker) onChanges(changes []store.Change) {
	var roles, keys, org, dbs bool
	for _, c := range changes {
		switch c.Kind {
		case store.ChangeAll:
			roles, keys, org, dbs = true, true, true, true
		case store.ChangeRole:
			roles = true
		case store.ChangeSigningKeys:
			keys = true
		case store.ChangeOrganization:
			org = true
		case store.ChangeDatabase:
			dbs = true
		}
	}
	ctx := context.Background()
	if roles {
		if err := b.reloadRoles(ctx); err != nil {
			b.log.Warn("reloading roles after a change failed", "err", err)
		}
	}
	if keys {
		if err := b.loadSigningKeys(ctx); err != nil {
			b.log.Warn("reloading signing keys after a change failed", "err", err)
		}
	}
	if org {
		if err := b.reloadOrg(ctx); err != nil {
			b.log.Warn("reloading the organization after a change failed", "err", err)
		}
	}
	if dbs {
		if list, err := b.st.ListDatabases(ctx); err != nil {
			b.log.Warn("reloading databases after a change failed", "err", err)
		} else {
			b.meter.loadKnown(list)
		}
	}
}

// reloadRoles replaces the role cache with the store's roles.
func (b *Broker) reloadRoles(ctx context.Context) error {
	b.roles.loadMu.Lock()
	defer b.roles.loadMu.Unlock()
	roles, err := b.st.ListRoles(ctx)
	if err != nil {
		return err
	}
	b.roles.load(roles)
	return nil
}

// reloadOrg replaces the in-memory token policy with the stored one.
func (b *Broker) reloadOrg(ctx context.Context) error {
	b.policy.loadMu.Lock()
	defer b.policy.loadMu.Unlock()
	org, err := b.st.GetOrganization(ctx)
	if err != nil {
		return err
	}
	b.policy.set(org.TokenPolicy)
	return nil
}

// syncRoles brings the role cache up to date after this process wrote a
// role: with a shared store by reloading it (a newer write by another
// process may already be in the store, and must not be overwritten by
// ours), otherwise by applying the write.
func (b *Broker) syncRoles(apply func()) {
	if b.shared && b.reloadRoles(context.Background()) == nil {
		return
	}
	apply()
}

// syncOrg is syncRoles for the token policy.
func (b *Broker) syncOrg(apply func()) {
	if b.shared && b.reloadOrg(context.Background()) == nil {
		return
	}
	apply()
}

// caughtUp reports whether a lookup that found nothing should be repeated:
// with a shared store the record may have been written by another broker
// an instant ago, so before a management call answers "not found" the
// store's view is brought up to date (one round trip, only on this path).
// Not for the credential-check path, which never waits on the network.
func (b *Broker) caughtUp(ctx context.Context, err error) bool {
	if !errors.Is(err, store.ErrNotFound) {
		return false
	}
	s, ok := b.st.(store.Syncer)
	return ok && s.Sync(ctx) == nil
}
