// Package view is the one place where the domain (server/broker) keeps
// state beside the store: a cached view of a store.Store, in the manner of
// a storage decorator. A View embeds the store it wraps, so every call it
// does not cache goes straight through, and adds what the domain reads on
// every call and must not read from the store each time:
//
//   - the roles, with compiled permission sets (the Check hot path);
//   - the decoded records of the credentials in use: application tokens,
//     and auth tokens with their principal's roles (credentials.go);
//   - the signing keys, decrypted once;
//   - the organization's token policy;
//   - the set of registered databases, which bounds metering;
//   - the last-use trackers of application tokens and auth tokens, and the
//     database usage meter, with their Flush to the store; reads of
//     database usage through the View include what is not yet flushed.
//
// Every backend keeps the View current the same way: through its change
// feed (store.ChangeNotifier). store/bolt reports its own commits,
// store/etcd its watch, which carries every replica's writes. Both deliver
// a write's changes before that write returns to its caller in this
// process, so a View reads its own process's writes at once, and other
// replicas' writes as soon as the watch brings them. The domain therefore
// reads the same way on every backend and has no "shared store" branch;
// running several replicas changes nothing above the store.
//
// Why a feed-driven cache rather than updating the cache after each local
// write: with several replicas a local update can overwrite a newer write
// another replica made meanwhile, and with one backend (bbolt) having a
// second code path is how the two drift apart. With the feed there is one
// path, and a cache entry is always refreshed by reading the store after
// the change is in it, never from the caller's copy.
//
// Freshness: a credential check fails closed when a shared store's view
// is stale (store.Freshness), whether its record comes from the store or
// from the View's credential cache, which asks the store first; so a stale
// cache is never used to allow anything.
package view

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
)

// Config configures Open.
type Config struct {
	// OrgID is the organization the roles are compiled for (required).
	OrgID string
	// SealKey opens the sealed private signing keys (32 bytes, required).
	SealKey []byte
	// WriteAction says which actions the Meter counts as writes (the
	// domain's classification); nil counts every allowed Check as a read.
	WriteAction func(action string) bool
	// Logger receives failures to refresh after a change; nil: slog.Default.
	Logger *slog.Logger
	// CredentialCacheSize bounds each credential cache (credentials.go):
	// 0 means DefaultCredentialCacheSize, a negative size turns them off.
	CredentialCacheSize int
}

// Granularities of last-use tracking. Application tokens' last use is
// informational, so a second is plenty. An auth token's last use is its
// expiry clock, so it is recorded more finely: it may expire at most this
// much earlier than exactly TTL after its last use (docs/auth.md).
const (
	AppTokenUseGranularity  = time.Second
	AuthTokenUseGranularity = 100 * time.Millisecond
)

// View is a store.Store with what the domain keeps beside it. Safe for
// concurrent use.
type View struct {
	store.Store // every call the View does not override goes straight through

	log    *slog.Logger
	syncer store.Syncer // nil: the backend needs no catch-up (one process)
	cancel func()       // stops the change feed
	// stale is set when refreshing after a change failed (a shared store
	// refusing reads while its own view is too old): the next batch of
	// changes, or the next Flush, reloads everything instead, so a missed
	// refresh does not linger until the same record changes again.
	stale atomic.Bool

	roles  roleCache
	keys   signingKeys
	policy tokenPolicy

	// The decoded credential records of the check path (credentials.go),
	// and what decides whether they may answer.
	tokens     *credCache[TokenCredential]
	authTokens *credCache[store.ResolvedAuthToken]
	freshness  store.Freshness // nil: the store's reads never go stale
	lag        store.FeedLag   // nil: the feed never lags this process's writes

	// TokenUse tracks application tokens' last use, AuthTokenUse auth
	// tokens' (their sliding expiry), Meter the Checks on databases; Flush
	// persists all three.
	TokenUse     *Uses
	AuthTokenUse *Uses
	Meter        *Meter
}

// Open builds a View of st and loads it. It subscribes to st's change feed
// before loading, so that no change committed between the loads and the
// subscription is missed (a change that arrives during the loads is applied
// after them, in order: see roleCache.loadMu). Stop stops the feed; Close,
// as every uncached call, is the store's own and closes it.
func Open(ctx context.Context, st store.Store, cfg Config) (*View, error) {
	if st == nil || cfg.OrgID == "" {
		return nil, errors.New("view: a store and an organization ID are required")
	}
	if len(cfg.SealKey) != 32 {
		return nil, errors.New("view: SealKey must be 32 bytes")
	}
	feed, ok := st.(store.ChangeNotifier)
	if !ok {
		return nil, fmt.Errorf("view: the store (%T) has no change feed (store.ChangeNotifier)", st)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cacheSize := cfg.CredentialCacheSize
	if cacheSize == 0 {
		cacheSize = DefaultCredentialCacheSize
	}
	v := &View{
		Store:        st,
		log:          cfg.Logger,
		roles:        newRoleCache(cfg.OrgID),
		keys:         signingKeys{seal: cfg.SealKey},
		TokenUse:     NewUses(AppTokenUseGranularity),
		AuthTokenUse: NewUses(AuthTokenUseGranularity),
		Meter:        newMeter(policy.DatabaseDRN(cfg.OrgID, ""), cfg.WriteAction),
		tokens:       newCredCache[TokenCredential](cacheSize),
		authTokens:   newCredCache[store.ResolvedAuthToken](cacheSize),
	}
	v.syncer, _ = st.(store.Syncer)
	v.freshness, _ = st.(store.Freshness)
	v.lag, _ = st.(store.FeedLag)
	cancelFeed := feed.Subscribe(v.onChanges)
	cancelWindows := feed.SubscribeWindows(v.openWindow, v.closeWindow)
	v.cancel = func() { cancelFeed(); cancelWindows() }
	if err := v.load(ctx); err != nil {
		v.Stop()
		return nil, err
	}
	return v, nil
}

// load reads everything the View caches.
func (v *View) load(ctx context.Context) error {
	if err := v.reloadRoles(ctx); err != nil {
		return fmt.Errorf("load roles: %w", err)
	}
	if err := v.reloadPolicy(ctx); err != nil {
		return fmt.Errorf("load organization: %w", err)
	}
	if err := v.reloadDatabases(ctx); err != nil {
		return fmt.Errorf("load databases: %w", err)
	}
	return v.reloadSigningKeys(ctx) // last: its error may be one to report, not retry
}

// Stop stops following the change feed; the cached state stops following
// the store. The store stays open (its opener closes it, after a last
// Flush).
func (v *View) Stop() {
	if v.cancel != nil {
		v.cancel()
	}
}

// onChanges refreshes what a batch of changes touches. It runs on the
// backend's update path (bbolt's committer, etcd's watch), before the
// write that made the changes returns, so it only reads the store: one
// read per changed role, one of the key set or the organization, none for
// databases and deleted credentials.
func (v *View) onChanges(changes []store.Change) {
	ctx := context.Background()
	if v.stale.Load() {
		v.reloadAfterFailure(ctx)
		return // the reload read everything this batch changed
	}
	var keys, org bool
	var roles []store.Change
	for _, c := range changes {
		switch c.Kind {
		case store.ChangeAll:
			if err := v.load(ctx); err != nil && !errors.Is(err, errUnusableKeys) {
				v.stale.Store(true)
				v.log.Warn("reloading the cached view after a store reload failed", "err", err)
			}
			return
		case store.ChangeRole:
			roles = append(roles, c)
		case store.ChangeSigningKeys:
			keys = true
		case store.ChangeOrganization:
			org = true
		case store.ChangeDatabase:
			v.Meter.setKnown(c.Key, !c.Deleted)
		case store.ChangeToken:
			if c.Deleted {
				v.TokenUse.Forget(c.Key)
			}
		case store.ChangeAuthToken:
			if c.Deleted {
				v.AuthTokenUse.Forget(c.Key)
			}
		}
	}
	if len(roles) > 0 {
		if err := v.refreshRoles(ctx, roles); err != nil {
			v.stale.Store(true)
			v.log.Warn("refreshing roles after a change failed", "err", err)
		}
	}
	if keys {
		if err := v.reloadSigningKeys(ctx); err != nil {
			// Not marked stale for a key set that is readable but
			// unusable (KeysError reports it to the writer); a failed
			// read is retried.
			if !errors.Is(err, errUnusableKeys) {
				v.stale.Store(true)
			}
			v.log.Warn("reloading signing keys after a change failed", "err", err)
		}
	}
	if org {
		if err := v.reloadPolicy(ctx); err != nil {
			v.stale.Store(true)
			v.log.Warn("reloading the organization after a change failed", "err", err)
		}
	}
}

// reloadAfterFailure reloads everything after a failed refresh, clearing
// the mark once a reload succeeds. The mark is cleared before the reload
// reads, so a failure during it marks again.
func (v *View) reloadAfterFailure(ctx context.Context) {
	v.stale.Store(false)
	if err := v.load(ctx); err != nil && !errors.Is(err, errUnusableKeys) {
		v.stale.Store(true)
		v.log.Warn("reloading the cached view after a failed refresh failed", "err", err)
	}
}

// CatchUp brings a shared store's local view up to date with every write
// acknowledged anywhere before the call (store.Syncer), and with it this
// View, and reports whether it did. Management calls use it before
// answering "not found" for a record another replica may have written an
// instant ago; never the credential-check path, which does not wait on the
// network. A store only this process writes has nothing to catch up: false.
func (v *View) CatchUp(ctx context.Context) bool {
	return v.syncer != nil && v.syncer.Sync(ctx) == nil
}

// Flush persists last-use times and database usage recorded since the
// previous flush: application-token uses, auth-token uses (their sliding
// expiry) and database usage, each its own store write. All three run
// whatever the others' outcome, since they are independent: one the store
// refuses (say a token-use flush too large for the etcd members'
// --max-txn-ops) must not hold back the others: garbage collection deletes
// auth tokens idle by their stored last use, so auth tokens in use would
// be deleted once their uses had gone unflushed for a TTL, and a crash
// would lose counted usage. The error joins the failures, each naming its part; the trackers keep
// what a failed part did not persist for the next flush. It also retries
// a refresh that failed (see stale): the server flushes every few
// seconds, which bounds how long a missed refresh lingers.
func (v *View) Flush(ctx context.Context) error {
	if v.stale.Load() {
		v.reloadAfterFailure(ctx)
	}
	return errors.Join(
		flushErr("flush token use", v.TokenUse.flush(ctx, v.Store.RecordTokenUse)),
		flushErr("flush auth token use", v.AuthTokenUse.flush(ctx, v.Store.RecordAuthTokenUse)),
		flushErr("flush database usage", v.Meter.flush(ctx, v.Store.RecordDatabaseUsage)),
	)
}

// flushErr names the part of a flush that failed (nil if it did not).
func flushErr(part string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", part, err)
}
