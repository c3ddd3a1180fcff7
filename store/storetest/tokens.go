package storetest

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// createConcurrently calls create for every item from a few goroutines, so
// that backends that batch commits set up large fixtures quickly; name
// names an item in errors.
func createConcurrently[T any](t *testing.T, items []T, name func(T) string, create func(T) error) {
	t.Helper()
	const workers = 16
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(items); i += workers {
				if err := create(items[i]); err != nil {
					t.Errorf("create %s: %v", name(items[i]), err)
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

// createTokens creates toks concurrently (createConcurrently).
func createTokens(t *testing.T, s store.Store, toks []store.Token) {
	t.Helper()
	createConcurrently(t, toks, func(tk store.Token) string { return "token " + tk.ClientID },
		func(tk store.Token) error { return s.CreateToken(t.Context(), tk) })
}

// listAll pages through every token with the given page size, calling
// between (if not nil) with the cursor after each page, and returns the
// client IDs in the order seen.
func listAll(t *testing.T, s store.Store, limit int, between func(cursor string)) []string {
	t.Helper()
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("ListTokens never returned an empty cursor")
		}
		page, next, err := s.ListTokens(t.Context(), cursor, limit)
		must(t, err, "list tokens")
		if len(page) > limit {
			t.Fatalf("page of %d tokens, limit %d", len(page), limit)
		}
		for _, tok := range page {
			seen = append(seen, tok.ClientID)
		}
		if next == "" {
			return seen
		}
		if len(page) == 0 {
			t.Fatalf("empty page with cursor %q", next)
		}
		cursor = next
		if between != nil {
			between(cursor)
		}
	}
}

func testPagination(t *testing.T, s store.Store) {
	mustCreateRoles(t, s, RoleID(1))
	const n = 250
	var toks []store.Token
	for _, i := range rand.Perm(n) {
		toks = append(toks, NewToken(ClientID(i), RoleID(1)))
	}
	createTokens(t, s, toks)

	for _, limit := range []int{7, 10} { // 10 divides 250: the last full page must end the walk
		seen := listAll(t, s, limit, nil)
		if len(seen) != n {
			t.Fatalf("limit %d: saw %d tokens, want %d", limit, len(seen), n)
		}
		for i, id := range seen {
			if id != ClientID(i) {
				t.Fatalf("limit %d: token %d is %s, want %s (ascending, each once)", limit, i, id, ClientID(i))
			}
		}
	}

	page, next, err := s.ListTokens(t.Context(), "", 0)
	must(t, err, "list tokens with default limit")
	if len(page) != 100 || next != ClientID(99) {
		t.Fatalf("default limit: %d tokens, next %q; want 100 and %q", len(page), next, ClientID(99))
	}
	if !sameToken(page[0], NewToken(ClientID(0), RoleID(1))) {
		t.Fatalf("listed token %+v differs from the stored one", page[0]) // pages carry whole records
	}
}

// testPaginationUnderChurn deletes and adds tokens behind and ahead of the
// cursor between pages. Every token that exists throughout must be seen
// exactly once, in ascending order, and none deleted before the cursor
// reached it may appear.
func testPaginationUnderChurn(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	const maxN = 400 // initial tokens are the even numbers below maxN
	exists := map[int]bool{}
	num := map[string]int{}
	var toks []store.Token
	for i := 0; i < maxN; i += 2 {
		toks = append(toks, NewToken(ClientID(i), RoleID(1)))
		exists[i] = true
	}
	for i := range maxN {
		num[ClientID(i)] = i
	}
	createTokens(t, s, toks)

	deleted := map[int]bool{}      // initial tokens deleted at some point
	deletedAhead := map[int]bool{} // ... before the cursor reached them
	find := func(from, step int, ok func(int) bool) (int, bool) {
		for i := from; i >= 0 && i < maxN; i += step {
			if ok(i) {
				return i, true
			}
		}
		return 0, false
	}
	initial := func(i int) bool { return i%2 == 0 && exists[i] }
	free := func(i int) bool { return i%2 == 1 && !exists[i] && !deleted[i] }
	del := func(i int) {
		must(t, s.DeleteToken(ctx, ClientID(i)), "delete token")
		exists[i], deleted[i] = false, true
	}
	add := func(i int) {
		must(t, s.CreateToken(ctx, NewToken(ClientID(i), RoleID(1))), "create token")
		exists[i] = true
	}

	seen := listAll(t, s, 7, func(cursor string) {
		c := num[cursor]
		if i, ok := find(c-1, -1, initial); ok {
			del(i) // behind
		}
		if i, ok := find(c+15, 1, initial); ok {
			del(i) // ahead
			deletedAhead[i] = true
		}
		if i, ok := find(c-1, -1, free); ok {
			add(i) // behind
		}
		if i, ok := find(c+9, 1, free); ok {
			add(i) // ahead
		}
	})

	count := map[int]int{}
	for k, id := range seen {
		if k > 0 && id <= seen[k-1] {
			t.Fatalf("not ascending: %s after %s", id, seen[k-1])
		}
		count[num[id]]++
	}
	for i := 0; i < maxN; i += 2 {
		if !deleted[i] && count[i] != 1 {
			t.Errorf("token %d existed throughout but was seen %d times", i, count[i])
		}
		if deletedAhead[i] && count[i] != 0 {
			t.Errorf("token %d was deleted ahead of the cursor but was seen", i)
		}
	}
	if len(deletedAhead) == 0 {
		t.Fatal("churn did not delete ahead of the cursor; the test is broken")
	}
}

func testRecordTokenUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateRoles(t, s, RoleID(1))
	a, b := NewToken(ClientID(1), RoleID(1)), NewToken(ClientID(2), RoleID(1))
	createTokens(t, s, []store.Token{a, b})

	t1 := Base.Add(time.Hour)
	must(t, s.RecordTokenUse(ctx, map[string]time.Time{a.ClientID: t1, b.ClientID: t1, ClientID(99): t1}),
		"record use, one ID unknown")
	a.LastUsed, b.LastUsed = t1, t1
	wantToken(t, s, a)
	wantToken(t, s, b)
	wantNoToken(t, s, ClientID(99))

	must(t, s.RecordTokenUse(ctx, map[string]time.Time{a.ClientID: t1.Add(-time.Minute)}), "record earlier use")
	wantToken(t, s, a)

	t2 := t1.Add(time.Minute)
	must(t, s.RecordTokenUse(ctx, map[string]time.Time{a.ClientID: t2}), "record later use")
	a.LastUsed = t2
	wantToken(t, s, a)
	wantToken(t, s, b)

	must(t, s.RecordTokenUse(ctx, nil), "record no use")
}

func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := Base
	mustCreateRoles(t, s, RoleID(1), RoleID(2))
	tok := func(n int, expiry time.Time, roles ...string) store.Token {
		tk := NewToken(ClientID(n), roles...)
		tk.Expiry = expiry
		return tk
	}
	never := tok(1, time.Time{}, RoleID(1))
	past := tok(2, now.Add(-time.Hour), RoleID(1))
	atNow := tok(3, now, RoleID(1))
	future := tok(4, now.Add(time.Microsecond), RoleID(1))
	onlyHolder := tok(5, now.Add(-time.Hour), RoleID(2)) // the only holder of role 2
	createTokens(t, s, []store.Token{never, past, atNow, future, onlyHolder})

	n, err := s.DeleteExpiredTokens(ctx, now)
	must(t, err, "delete expired tokens")
	if n != 3 {
		t.Fatalf("DeleteExpiredTokens removed %d tokens, want 3", n)
	}
	wantToken(t, s, never)
	wantToken(t, s, future)
	for _, gone := range []store.Token{past, atNow, onlyHolder} {
		wantNoToken(t, s, gone.ClientID)
	}

	// Its index entries are gone too: seen from a time at which the GC'd
	// token would still be live, role 2 is held by nothing.
	must(t, s.DeleteRole(ctx, RoleID(2), now.Add(-2*time.Hour)), "delete role whose only holder was collected")

	// A token re-created under a collected ID without expiry must survive.
	must(t, s.CreateToken(ctx, tok(2, time.Time{}, RoleID(1))), "re-create collected token")
	n, err = s.DeleteExpiredTokens(ctx, now)
	must(t, err, "delete expired tokens again")
	if n != 0 {
		t.Fatalf("second DeleteExpiredTokens removed %d tokens, want 0", n)
	}
	wantToken(t, s, tok(2, time.Time{}, RoleID(1)))

	n, err = s.DeleteExpiredTokens(ctx, now.Add(time.Microsecond))
	must(t, err, "delete expired tokens later")
	if n != 1 {
		t.Fatalf("later DeleteExpiredTokens removed %d tokens, want 1", n)
	}
	wantNoToken(t, s, future.ClientID)
}

// testDeleteExpiredMany covers a backlog larger than one deletion batch.
func testDeleteExpiredMany(t *testing.T, s store.Store) {
	now := Base
	mustCreateRoles(t, s, RoleID(1))
	const expired, live = 2100, 10
	var toks []store.Token
	for i := range expired + live {
		tk := NewToken(ClientID(i), RoleID(1))
		tk.Expiry = now.Add(time.Duration(expired-i) * -time.Millisecond) // before now for i < expired
		if i >= expired {
			tk.Expiry = now.Add(time.Hour)
		}
		toks = append(toks, tk)
	}
	createTokens(t, s, toks)

	n, err := s.DeleteExpiredTokens(t.Context(), now)
	must(t, err, "delete expired tokens")
	if n != expired {
		t.Fatalf("DeleteExpiredTokens removed %d tokens, want %d", n, expired)
	}
	if seen := listAll(t, s, 100, nil); len(seen) != live {
		t.Fatalf("%d tokens left, want %d", len(seen), live)
	}
}
