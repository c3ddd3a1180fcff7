package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/storetest"
)

// TestIdleGCKeepsTokenUsedDuringScan orders the race deterministically: a
// use of an idle token is queued (not yet committed) when
// DeleteIdleAuthTokens scans, so the scan sees the token as idle; the use
// commits first, and the deletion's re-check inside its own write must
// then keep the token.
func TestIdleGCKeepsTokenUsedDuringScan(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	client := storetest.ClientID(1)
	if err := s.CreateToken(ctx, storetest.NewToken(client, storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	at := storetest.NewAuthToken(1, store.PrincipalApplicationToken, client) // LastUsed Base
	if err := s.CreateAuthToken(ctx, at); err != nil {
		t.Fatal(err)
	}
	idleSince := storetest.Base.Add(time.Hour)
	used := idleSince.Add(time.Second)

	release, blocked := blockCommitter(t, s)
	useErr := make(chan error, 1)
	go func() {
		useErr <- s.RecordAuthTokenUse(ctx, map[string]time.Time{string(at.MAC): used})
	}()
	waitQueued(t, s, 1)
	type result struct {
		n   int
		err error
	}
	gcRes := make(chan result, 1)
	go func() {
		n, err := s.DeleteIdleAuthTokens(ctx, idleSince)
		gcRes <- result{n, err}
	}()
	waitQueued(t, s, 2) // the scan is done and found the token idle
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if err := <-useErr; err != nil {
		t.Fatal(err)
	}
	res := <-gcRes
	if res.err != nil || res.n != 0 {
		t.Fatalf("DeleteIdleAuthTokens = %d, %v; want 0, nil", res.n, res.err)
	}
	got, err := s.GetAuthToken(ctx, at.MAC)
	if err != nil {
		t.Fatalf("auth token used during the scan was deleted: %v", err)
	}
	if !got.LastUsed.Equal(used) {
		t.Fatalf("LastUsed = %v, want %v", got.LastUsed, used)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteIdleAuthTokensCollectsOrphans deletes principals behind the
// store's back (as a binary from before auth tokens would, without the
// cascade) and checks that the orphan pass removes exactly their auth
// tokens: more than one chunk of MACs under one principal, and more than
// one chunk of distinct principals.
func TestDeleteIdleAuthTokensCollectsOrphans(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	const (
		bigOrphan   = 1500 // auth tokens of one deleted application token
		orphanUsers = 1200 // deleted users with one auth token each
		liveUsers   = 30
	)
	gone, live := storetest.ClientID(1), storetest.ClientID(2)
	for _, c := range []string{gone, live} {
		if err := s.CreateToken(ctx, storetest.NewToken(c, storetest.RoleID(1))); err != nil {
			t.Fatal(err)
		}
	}
	parallel(t, orphanUsers+liveUsers, func(u int) error {
		return s.CreateUser(ctx, storetest.NewUser(storetest.UserID(u), storetest.Username(u)))
	})
	var (
		toks   []store.AuthToken
		orphan []bool
	)
	add := func(kind, id string, isOrphan bool) {
		at := storetest.NewAuthToken(len(toks), kind, id)
		at.LastUsed = storetest.Base.Add(time.Hour) // none is idle
		toks, orphan = append(toks, at), append(orphan, isOrphan)
	}
	for range bigOrphan {
		add(store.PrincipalApplicationToken, gone, true)
	}
	for range 5 {
		add(store.PrincipalApplicationToken, live, false)
	}
	for u := range orphanUsers + liveUsers {
		add(store.PrincipalUser, storetest.UserID(u), u < orphanUsers)
	}
	parallel(t, len(toks), func(i int) error { return s.CreateAuthToken(ctx, toks[i]) })

	// Delete the principal records only, leaving their auth tokens.
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketTokens).Delete([]byte(gone)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTokensByRole).Delete(roleIndexKey(storetest.RoleID(1), gone)); err != nil {
			return err
		}
		for u := range orphanUsers {
			if err := tx.Bucket(bucketUsers).Delete([]byte(storetest.UserID(u))); err != nil {
				return err
			}
			if err := tx.Bucket(bucketUsersByName).Delete([]byte(storetest.Username(u))); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	removed, err := s.DeleteIdleAuthTokens(ctx, storetest.Base)
	if err != nil {
		t.Fatal(err)
	}
	if want := bigOrphan + orphanUsers; removed != want {
		t.Fatalf("DeleteIdleAuthTokens removed %d, want %d orphans", removed, want)
	}
	for i, at := range toks {
		_, err := s.GetAuthToken(ctx, at.MAC)
		if orphan[i] != errors.Is(err, store.ErrNotFound) {
			t.Fatalf("auth token %d of %s %s: orphan %v, get: %v", i, at.PrincipalKind, at.PrincipalID, orphan[i], err)
		}
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}

// TestOrphanPassRunsOnceAfterOpen: the orphan pass of DeleteIdleAuthTokens
// walks every auth token, so it runs on the first call after Open only;
// an orphan made later (behind the store's back) stays until the next
// open's first call.
func TestOrphanPassRunsOnceAfterOpen(t *testing.T) {
	s, path := openTest(t, Options{})
	ctx := context.Background()
	u := storetest.NewUser(storetest.UserID(1), storetest.Username(1))
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	at := storetest.NewAuthToken(1, store.PrincipalUser, u.ID)
	at.LastUsed = storetest.Base.Add(time.Hour) // never idle here
	if err := s.CreateAuthToken(ctx, at); err != nil {
		t.Fatal(err)
	}
	deleteIdle := func(s *Store, want int) {
		t.Helper()
		n, err := s.DeleteIdleAuthTokens(ctx, storetest.Base)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("DeleteIdleAuthTokens removed %d, want %d", n, want)
		}
	}
	deleteIdle(s, 0) // the pass runs, and finds nothing
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return errors.Join(tx.Bucket(bucketUsers).Delete([]byte(u.ID)), tx.Bucket(bucketUsersByName).Delete([]byte(u.Username)))
	}); err != nil {
		t.Fatal(err)
	}
	deleteIdle(s, 0) // no second walk
	if _, err := s.GetAuthToken(ctx, at.MAC); err != nil {
		t.Fatalf("the orphan went before the next open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deleteIdle(s, 1)
	if _, err := s.GetAuthToken(ctx, at.MAC); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get the orphan after the pass: %v, want ErrNotFound", err)
	}
}

// TestOpenAddsBucketsToOlderFile: a version 1 file written before users
// and auth tokens existed opens, keeps its data and gains the buckets.
func TestOpenAddsBucketsToOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := []string{"meta", "org", "roles", "tokens", "tokens_by_role", "tokens_by_expiry"}
	role, _ := encodeRole(storetest.NewRole(storetest.RoleID(1)))
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range old {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		if err := tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("1")); err != nil {
			return err
		}
		return tx.Bucket([]byte("roles")).Put([]byte(storetest.RoleID(1)), role)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a version 1 file without the user buckets: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	u := storetest.NewUser(storetest.UserID(1), storetest.Username(1), storetest.RoleID(1))
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAuthToken(ctx, storetest.NewAuthToken(1, store.PrincipalUser, u.ID)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRole(ctx, storetest.RoleID(1), storetest.Base); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("delete role held by a user: %v", err)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
}

// TestRejectsInvalidInput: input that cannot be stored faithfully is
// refused with a plain error (no sentinel), and nothing is written.
func TestRejectsInvalidInput(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := s.CreateRole(ctx, storetest.NewRole(storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	client := storetest.ClientID(1)
	if err := s.CreateToken(ctx, storetest.NewToken(client, storetest.RoleID(1))); err != nil {
		t.Fatal(err)
	}
	user := func(edit func(*store.User)) store.User {
		u := storetest.NewUser(storetest.UserID(1), storetest.Username(1), storetest.RoleID(1))
		edit(&u)
		return u
	}
	auth := func(edit func(*store.AuthToken)) store.AuthToken {
		a := storetest.NewAuthToken(1, store.PrincipalApplicationToken, client)
		edit(&a)
		return a
	}
	cases := map[string]error{
		"empty user ID":          s.CreateUser(ctx, user(func(u *store.User) { u.ID = "" })),
		"NUL in user ID":         s.CreateUser(ctx, user(func(u *store.User) { u.ID = "a\x00b" })),
		"empty username":         s.CreateUser(ctx, user(func(u *store.User) { u.Username = "" })),
		"username of 257 bytes":  s.CreateUser(ctx, user(func(u *store.User) { u.Username = strings.Repeat("u", 257) })),
		"empty role ID":          s.CreateUser(ctx, user(func(u *store.User) { u.Roles = []string{""} })),
		"time beyond year 9999":  s.CreateUser(ctx, user(func(u *store.User) { u.CreatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })),
		"empty MAC":              s.CreateAuthToken(ctx, auth(func(a *store.AuthToken) { a.MAC = nil })),
		"MAC of 65 bytes":        s.CreateAuthToken(ctx, auth(func(a *store.AuthToken) { a.MAC = make([]byte, 65) })),
		"empty principal ID":     s.CreateAuthToken(ctx, auth(func(a *store.AuthToken) { a.PrincipalID = "" })),
		"NUL in principal ID":    s.CreateAuthToken(ctx, auth(func(a *store.AuthToken) { a.PrincipalID = client + "\x00" })),
		"unknown principal kind": s.CreateAuthToken(ctx, auth(func(a *store.AuthToken) { a.PrincipalKind = "" })),
	}
	for name, err := range cases {
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAlreadyExists):
			t.Errorf("%s: got %v, want a plain error", name, err)
		}
	}
	// The longest username is fine.
	long := user(func(u *store.User) { u.Username = strings.Repeat("u", maxUsernameLen) })
	if err := s.CreateUser(ctx, long); err != nil {
		t.Fatalf("username of %d bytes: %v", maxUsernameLen, err)
	}

	_, err := s.UpdateUser(ctx, long.ID, func(u store.User) (store.User, error) {
		u.Roles = append(u.Roles, "")
		return u, nil
	})
	if err == nil {
		t.Error("UpdateUser accepted an empty role ID")
	}
	if _, err := s.GetAuthToken(ctx, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAuthToken(nil): got %v, want ErrNotFound", err)
	}
	if err := s.RecordAuthTokenUse(ctx, map[string]time.Time{"": storetest.Base}); err != nil {
		t.Errorf("RecordAuthTokenUse with an empty MAC: %v (want it skipped as unknown)", err)
	}
	if err := VerifyIndexes(s); err != nil {
		t.Fatal(err)
	}
	var users, auths int
	_ = s.db.View(func(tx *bbolt.Tx) error {
		users = tx.Bucket(bucketUsers).Stats().KeyN
		auths = tx.Bucket(bucketAuthTokens).Stats().KeyN
		return nil
	})
	if users != 1 || auths != 0 {
		t.Fatalf("refused input left %d users (want 1) and %d auth tokens (want 0)", users, auths)
	}
}

// parallel runs fn(0..n-1) from 16 goroutines.
func parallel(t *testing.T, n int, fn func(int) error) {
	t.Helper()
	const workers = 16
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}
