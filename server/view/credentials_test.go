package view_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/server/view"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// The credential caches over real stores. What they must never do is
// answer with a record whose change has returned: a revoked token, a
// principal's old roles, an auth token deleted with its principal.

// followCredentials runs the caches' contract against writes through
// writer; settle as in follow.
func followCredentials(t *testing.T, v *view.View, writer store.Store, settle func()) {
	ctx := t.Context()
	id := storetest.ClientID(50)
	must(t, writer.CreateToken(ctx, storetest.NewToken(id, storetest.RoleID(1))), "create token")
	settle()
	for range 2 { // a miss, then a hit
		c, err := v.TokenCredential(ctx, id)
		must(t, err, "token credential")
		if c.ClientID != id || !slices.Equal(c.Roles, []string{storetest.RoleID(1)}) || len(c.SecretMAC) != 32 || !c.Expiry.IsZero() {
			t.Fatalf("token credential %+v", c)
		}
	}

	// An auth token of that token, then one of a user.
	viaApp := storetest.NewAuthToken(50, store.PrincipalApplicationToken, id)
	must(t, writer.CreateAuthToken(ctx, viaApp), "create auth token")
	user := storetest.NewUser(storetest.UserID(50), storetest.Username(50), storetest.RoleID(1))
	must(t, writer.CreateUser(ctx, user), "create user")
	viaUser := storetest.NewAuthToken(51, store.PrincipalUser, user.ID)
	must(t, writer.CreateAuthToken(ctx, viaUser), "create auth token")
	settle()
	resolve := func(at store.AuthToken) (store.ResolvedAuthToken, error) {
		return v.ResolvedAuthToken(ctx, string(at.MAC), at.MAC)
	}
	for range 2 {
		for _, at := range []store.AuthToken{viaApp, viaUser} {
			r, err := resolve(at)
			must(t, err, "resolve auth token")
			if r.PrincipalID != at.PrincipalID || !slices.Equal(r.Roles, []string{storetest.RoleID(1)}) {
				t.Fatalf("resolved %+v", r)
			}
		}
	}

	// A recorded use reaches the cached auth token.
	used := storetest.Base.Add(time.Hour)
	must(t, writer.RecordAuthTokenUse(ctx, map[string]time.Time{string(viaUser.MAC): used}), "record auth token use")
	settle()
	if r, err := resolve(viaUser); err != nil || !r.LastUsed.Equal(used) {
		t.Fatalf("after a recorded use: %v, last used %v, want %v", err, r.LastUsed, used)
	}

	// The user's new roles reach the auth tokens minted from it.
	must(t, writer.CreateRole(ctx, storetest.NewRole(storetest.RoleID(3))), "create role")
	_, err := writer.UpdateUser(ctx, user.ID, func(u store.User) (store.User, error) {
		u.Roles = []string{storetest.RoleID(3)}
		return u, nil
	})
	must(t, err, "update user")
	settle()
	if r, err := resolve(viaUser); err != nil || !slices.Equal(r.Roles, []string{storetest.RoleID(3)}) {
		t.Fatalf("after the user's roles changed: %v, roles %v", err, r.Roles)
	}

	// Revocations: the auth token itself, the user, the application token
	// (and with it its auth token).
	must(t, writer.DeleteAuthToken(ctx, viaUser.MAC), "delete auth token")
	settle()
	if _, err := resolve(viaUser); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted auth token: %v", err)
	}
	viaUser2 := storetest.NewAuthToken(52, store.PrincipalUser, user.ID)
	must(t, writer.CreateAuthToken(ctx, viaUser2), "create auth token")
	settle()
	if _, err := resolve(viaUser2); err != nil {
		t.Fatal(err)
	}
	must(t, writer.DeleteUser(ctx, user.ID), "delete user")
	settle()
	if _, err := resolve(viaUser2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("auth token of a deleted user: %v", err)
	}
	must(t, writer.DeleteToken(ctx, id), "delete token")
	settle()
	if _, err := v.TokenCredential(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted token: %v", err)
	}
	if _, err := resolve(viaApp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("auth token of a deleted token: %v", err)
	}
}

func TestCredentialsBolt(t *testing.T) {
	s := openBolt(t)
	v := openView(t, s, bootstrap(t, s))
	followCredentials(t, v, v, func() {})
}

func TestCredentialsEtcdOwnWrites(t *testing.T) {
	a, _ := openEtcdPair(t)
	v := openView(t, a, bootstrap(t, a))
	followCredentials(t, v, v, func() {})
}

func TestCredentialsEtcdOtherReplica(t *testing.T) {
	a, b := openEtcdPair(t)
	org := bootstrap(t, b)
	must(t, a.Sync(t.Context()), "sync")
	v := openView(t, a, org)
	followCredentials(t, v, b, func() {
		if !v.CatchUp(t.Context()) {
			t.Fatal("CatchUp on a shared store: false")
		}
	})
}

// countingStore is a real bbolt store that counts the credential reads
// reaching it, can hold one GetToken between its read and its return, and
// can pretend to be a shared store that is stale or whose feed lags.
type countingStore struct {
	*bolt.Store
	reads  atomic.Int64
	hold   atomic.Pointer[chan chan struct{}] // when set, the next GetToken sends a release channel here after reading, then waits on it
	stale  atomic.Bool
	behind atomic.Bool
}

func (s *countingStore) GetToken(ctx context.Context, id string) (store.Token, error) {
	s.reads.Add(1)
	t, err := s.Store.GetToken(ctx, id)
	if h := s.hold.Swap(nil); h != nil {
		release := make(chan struct{})
		*h <- release
		<-release
	}
	return t, err
}

func (s *countingStore) ResolveAuthToken(ctx context.Context, mac []byte) (store.ResolvedAuthToken, error) {
	s.reads.Add(1)
	return s.Store.ResolveAuthToken(ctx, mac)
}

func (s *countingStore) Stale() error {
	if s.stale.Load() {
		return fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	return nil
}

func (s *countingStore) FeedBehind() bool { return s.behind.Load() }

func openCounting(t *testing.T, cacheSize int) (*countingStore, *view.View) {
	t.Helper()
	s := &countingStore{Store: openBolt(t)}
	org := bootstrap(t, s)
	v, err := view.Open(t.Context(), s, view.Config{OrgID: org.ID, SealKey: sealKey, CredentialCacheSize: cacheSize})
	must(t, err, "open view")
	t.Cleanup(v.Stop)
	return s, v
}

func TestCredentialHitsSkipTheStore(t *testing.T) {
	s, v := openCounting(t, 0)
	ctx := t.Context()
	id := storetest.ClientID(1) // the bootstrap token
	at := storetest.NewAuthToken(1, store.PrincipalApplicationToken, id)
	must(t, s.CreateAuthToken(ctx, at), "create auth token")
	for range 5 {
		_, err := v.TokenCredential(ctx, id)
		must(t, err, "token credential")
		_, err = v.ResolvedAuthToken(ctx, string(at.MAC), at.MAC)
		must(t, err, "resolve")
	}
	if n := s.reads.Load(); n != 2 {
		t.Fatalf("10 reads of 2 credentials reached the store %d times, want 2", n)
	}

	// A guessed credential is not cached: each try reads the store.
	for range 3 {
		if _, err := v.TokenCredential(ctx, storetest.ClientID(99)); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n := s.reads.Load(); n != 5 {
		t.Fatalf("3 unknown IDs: %d store reads in all, want 5", n)
	}

	// While this process has a write its feed has not delivered, reads
	// bypass the cache (and the store waits for the write).
	s.behind.Store(true)
	_, err := v.TokenCredential(ctx, id)
	must(t, err, "token credential")
	if n := s.reads.Load(); n != 6 {
		t.Fatalf("with the feed behind: %d store reads, want 6", n)
	}
	s.behind.Store(false)

	// A stale shared store fails closed, even on a hit.
	s.stale.Store(true)
	if _, err := v.TokenCredential(ctx, id); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("stale store, token: %v", err)
	}
	if _, err := v.ResolvedAuthToken(ctx, string(at.MAC), at.MAC); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("stale store, auth token: %v", err)
	}
}

// TestFillRacingARevocation holds a miss between its store read and its
// return while the token is deleted: the read's result may be answered
// (it began before the revocation), but must not be cached.
func TestFillRacingARevocation(t *testing.T) {
	s, v := openCounting(t, 0)
	ctx := t.Context()
	id := storetest.ClientID(7)
	must(t, s.CreateToken(ctx, storetest.NewToken(id, storetest.RoleID(1))), "create token")
	hold := make(chan chan struct{})
	s.hold.Store(&hold)
	done := make(chan error, 1)
	go func() {
		_, err := v.TokenCredential(ctx, id)
		done <- err
	}()
	release := <-hold // read from the store, not yet filled
	must(t, s.DeleteToken(ctx, id), "delete token")
	close(release)
	must(t, <-done, "the racing read")
	if _, err := v.TokenCredential(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the revocation returned: %v (the racing read was cached)", err)
	}
}

// TestRevocationUnderLoad reads credentials from many goroutines while
// they are revoked (run with -race): once DeleteToken returns, no read
// begun after it finds the token.
func TestRevocationUnderLoad(t *testing.T) {
	s := openBolt(t)
	v := openView(t, s, bootstrap(t, s))
	ctx := t.Context()
	for round := range 100 {
		id := storetest.ClientID(1000 + round)
		must(t, s.CreateToken(ctx, storetest.NewToken(id, storetest.RoleID(1))), "create token")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := v.TokenCredential(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Error(err)
						return
					}
				}
			})
		}
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond) // vary where the delete lands
		must(t, s.DeleteToken(ctx, id), "delete token")
		for range 20 {
			if _, err := v.TokenCredential(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: a read after the revocation returned: %v", round, err)
			}
		}
		close(stop)
		wg.Wait()
	}
}

func TestCredentialCacheIsBounded(t *testing.T) {
	s, v := openCounting(t, 8)
	ctx := t.Context()
	for i := range 40 {
		id := storetest.ClientID(100 + i)
		must(t, s.CreateToken(ctx, storetest.NewToken(id, storetest.RoleID(1))), "create token")
		c, err := v.TokenCredential(ctx, id)
		must(t, err, "token credential")
		if c.ClientID != id {
			t.Fatalf("got %q, want %q", c.ClientID, id)
		}
		if n := view.CachedTokens(v); n > 8 {
			t.Fatalf("%d entries cached, bound 8", n)
		}
	}
	// Every one still answers (from the store when evicted).
	for i := range 40 {
		if _, err := v.TokenCredential(ctx, storetest.ClientID(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	// Off: nothing cached, every read reaches the store.
	s2, v2 := openCounting(t, -1)
	for range 3 {
		_, err := v2.TokenCredential(ctx, storetest.ClientID(1))
		must(t, err, "token credential")
	}
	if n := s2.reads.Load(); n != 3 || view.CachedTokens(v2) != 0 {
		t.Fatalf("cache off: %d store reads (want 3), %d cached", n, view.CachedTokens(v2))
	}
}

func BenchmarkTokenCredential(b *testing.B) {
	s, err := bolt.Open(b.TempDir()+"/tokenbroker.db", bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	org := storetest.NewOrganization()
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		b.Fatal(err)
	}
	if err := s.Bootstrap(ctx, org, storetest.NewToken(storetest.ClientID(1), storetest.RoleID(1))); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{-1, 0} {
		name := map[int]string{-1: "Uncached", 0: "Cached"}[size]
		b.Run(name, func(b *testing.B) {
			v, err := view.Open(ctx, s, view.Config{OrgID: org.ID, SealKey: sealKey, CredentialCacheSize: size})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Stop()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.TokenCredential(ctx, storetest.ClientID(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
