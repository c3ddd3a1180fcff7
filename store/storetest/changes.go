package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tokenbroker/tokenbroker/store"
)

// The change feed (store.ChangeNotifier) is part of the contract: every
// backend reports the same kinds and keys for the same write, after its
// reads return the write and before the write returns to its caller (so a
// cache fed by it reads its own process's writes), and nothing for a write
// that did not happen.

// feedRecorder collects what a subscriber is called with, and checks on
// each call that the store already returns the changed records.
type feedRecorder struct {
	mu      sync.Mutex
	got     []store.Change
	unready []string // changes the store did not yet return when reported
}

func subscribe(t *testing.T, s store.Store) *feedRecorder {
	t.Helper()
	n, ok := s.(store.ChangeNotifier)
	if !ok {
		t.Fatalf("%T does not implement store.ChangeNotifier", s)
	}
	r := &feedRecorder{}
	cancel := n.Subscribe(func(changes []store.Change) {
		for _, c := range changes {
			if !c.Deleted && c.Kind == store.ChangeRole {
				if _, err := s.GetRole(context.Background(), c.Key); err != nil {
					r.mu.Lock()
					r.unready = append(r.unready, "role "+c.Key+": "+err.Error())
					r.mu.Unlock()
				}
			}
		}
		r.mu.Lock()
		r.got = append(r.got, changes...)
		r.mu.Unlock()
	})
	t.Cleanup(cancel)
	return r
}

// take returns (and forgets) the changes reported so far, sorted, with
// audit changes left out (their keys are Seqs).
func (r *feedRecorder) take(t *testing.T) []store.Change {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.unready) > 0 {
		t.Fatalf("changes reported before the store returned them: %v", r.unready)
	}
	out := slices.DeleteFunc(r.got, func(c store.Change) bool { return c.Kind == store.ChangeAudit })
	r.got = nil
	slices.SortFunc(out, func(a, b store.Change) int {
		if d := strings.Compare(string(a.Kind), string(b.Kind)); d != 0 {
			return d
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// want checks that exactly want was reported by the time the write
// returned (no waiting: the contract says before).
func (r *feedRecorder) want(t *testing.T, what string, want ...store.Change) {
	t.Helper()
	got := r.take(t)
	slices.SortFunc(want, func(a, b store.Change) int {
		if d := strings.Compare(string(a.Kind), string(b.Kind)); d != 0 {
			return d
		}
		return strings.Compare(a.Key, b.Key)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("%s: the change feed reported\n %v\nby the time the write returned, want\n %v", what, got, want)
	}
}

func put(kind store.ChangeKind, key string) store.Change { return store.Change{Kind: kind, Key: key} }
func del(kind store.ChangeKind, key string) store.Change {
	return store.Change{Kind: kind, Key: key, Deleted: true}
}

func testChangeFeed(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := subscribe(t, s)

	mustCreateRoles(t, s, RoleID(1))
	r.want(t, "create role", put(store.ChangeRole, RoleID(1)))
	must(t, s.Bootstrap(ctx, NewOrganization(), NewToken(ClientID(1), RoleID(1))), "bootstrap")
	r.want(t, "bootstrap", put(store.ChangeOrganization, "org"), put(store.ChangeToken, ClientID(1)))

	_, err := s.UpdateRole(ctx, RoleID(1), func(x store.Role) (store.Role, error) { x.Description = "changed"; return x, nil })
	must(t, err, "update role")
	r.want(t, "update role", put(store.ChangeRole, RoleID(1)))

	_, err = s.UpdateOrganization(ctx, func(o store.Organization) (store.Organization, error) {
		o.TokenPolicy.MaxTokenLifetime = 3600e9
		return o, nil
	})
	must(t, err, "update organization")
	r.want(t, "update organization", put(store.ChangeOrganization, "org"))

	must(t, s.UpdateSigningKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
		return []store.SigningKey{NewSigningKey(1)}, nil
	}), "update signing keys")
	r.want(t, "update signing keys", put(store.ChangeSigningKeys, "keys"))

	must(t, s.CreateDatabase(ctx, NewDatabase(1), NewDatabaseRole(1), NewDatabaseToken(1)), "create database")
	r.want(t, "create database", put(store.ChangeDatabase, DatabaseID(1)),
		put(store.ChangeRole, DatabaseRoleID(1)), put(store.ChangeToken, DatabaseClientID(1)))

	// A cascade reports every record it deletes.
	must(t, s.CreateToken(ctx, NewToken(ClientID(2), RoleID(1))), "create token")
	at := NewAuthToken(1, store.PrincipalApplicationToken, ClientID(2))
	must(t, s.CreateAuthToken(ctx, at), "create auth token")
	r.want(t, "create token and auth token", put(store.ChangeToken, ClientID(2)), put(store.ChangeAuthToken, string(at.MAC)))
	must(t, s.DeleteToken(ctx, ClientID(2)), "delete token")
	r.want(t, "delete token", del(store.ChangeToken, ClientID(2)), del(store.ChangeAuthToken, string(at.MAC)))

	// Refused writes report nothing.
	wantErr(t, s.CreateRole(ctx, NewRole(RoleID(1))), store.ErrAlreadyExists, "create a taken role")
	refusal := errors.New("refused")
	_, err = s.UpdateRole(ctx, RoleID(1), func(store.Role) (store.Role, error) { return store.Role{}, refusal })
	if !errors.Is(err, refusal) {
		t.Fatalf("refused update: %v", err)
	}
	r.want(t, "refused writes")

	// An audited write reports its event too (kind ChangeAudit).
	ev := NewAuditEvent("Test.DeleteRole", "role", RoleID(2))
	mustCreateRoles(t, s, RoleID(2))
	r.take(t)
	must(t, s.DeleteRole(store.WithAudit(ctx, &ev), RoleID(2), Base), "audited delete role")
	r.mu.Lock()
	audited := slices.ContainsFunc(r.got, func(c store.Change) bool { return c.Kind == store.ChangeAudit && !c.Deleted })
	r.mu.Unlock()
	if !audited {
		t.Fatalf("audited write: no %q change reported", store.ChangeAudit)
	}
	r.want(t, "audited delete role", del(store.ChangeRole, RoleID(2)))
}

// testSharedFeed: a write through one handle reaches the other handle's
// feed (eventually: the watch brings it), with the same change the writer's
// own feed reported, and the other handle's reads return it when reported.
func testSharedFeed(t *testing.T, a, b store.Store) {
	ra, rb := subscribe(t, a), subscribe(t, b)
	mustCreateRoles(t, a, RoleID(1))
	ra.want(t, "writer's feed", put(store.ChangeRole, RoleID(1)))
	eventually(t, "the change reaches the other handle's feed", func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return len(rb.got) > 0
	})
	rb.want(t, "other handle's feed", put(store.ChangeRole, RoleID(1)))
	must(t, b.DeleteRole(t.Context(), RoleID(1), Base), "delete role through b")
	rb.want(t, "deleter's feed", del(store.ChangeRole, RoleID(1)))
	eventually(t, "the deletion reaches the first handle's feed", func() bool {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		return len(ra.got) > 0
	})
	ra.want(t, "first handle's feed", del(store.ChangeRole, RoleID(1)))
}

// testChangeWindows: a batch's window opens before the store returns its
// writes and closes after they are returned and the feed delivered them,
// all before the write returns; windows come in order, never overlapping.
func testChangeWindows(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := s.(store.ChangeNotifier)
	var mu sync.Mutex
	var log []string
	var problems []string
	open := 0
	visible := func(id string) bool {
		_, err := s.GetToken(ctx, id)
		return err == nil
	}
	note := func(format string, c store.Change) {
		log = append(log, format+":"+c.Key)
	}
	cancelFeed := n.Subscribe(func(changes []store.Change) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range changes {
			if c.Kind == store.ChangeToken {
				note("feed", c)
			}
		}
	})
	defer cancelFeed()
	cancelWindows := n.SubscribeWindows(func(changes []store.Change) {
		mu.Lock()
		defer mu.Unlock()
		if open++; open != 1 {
			problems = append(problems, "windows overlap")
		}
		for _, c := range changes {
			if c.Kind == store.ChangeToken {
				note("open", c)
				if visible(c.Key) == !c.Deleted {
					problems = append(problems, "a read saw "+c.Key+"'s change before its window opened")
				}
			}
		}
	}, func(changes []store.Change) {
		mu.Lock()
		defer mu.Unlock()
		open--
		for _, c := range changes {
			if c.Kind == store.ChangeToken {
				note("close", c)
				if visible(c.Key) != !c.Deleted {
					problems = append(problems, "a read missed "+c.Key+"'s change when its window closed")
				}
			}
		}
	})
	defer cancelWindows()

	mustCreateRoles(t, s, RoleID(1))
	must(t, s.Bootstrap(ctx, NewOrganization(), NewToken(ClientID(1), RoleID(1))), "bootstrap")
	must(t, s.CreateToken(ctx, NewToken(ClientID(2), RoleID(1))), "create token")
	must(t, s.DeleteToken(ctx, ClientID(2)), "delete token")
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatal(strings.Join(problems, "; "))
	}
	want := []string{"open:" + ClientID(1), "feed:" + ClientID(1), "close:" + ClientID(1),
		"open:" + ClientID(2), "feed:" + ClientID(2), "close:" + ClientID(2),
		"open:" + ClientID(2), "feed:" + ClientID(2), "close:" + ClientID(2)}
	if !slices.Equal(log, want) {
		t.Fatalf("by the time the writes returned:\n %v\nwant\n %v", log, want)
	}
}
