package kvrecords

import (
	"context"
	"fmt"
	"slices"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
)

// prepareUser validates and encodes a user outside the write transaction.
func prepareUser(u store.User) ([]byte, error) {
	if err := checkID("user", u.ID); err != nil {
		return nil, err
	}
	if err := checkUsername(u.Username); err != nil {
		return nil, err
	}
	if err := checkRoleIDs(u.Roles); err != nil {
		return nil, err
	}
	return encodeUser(u)
}

func checkRoleIDs(roles []string) error {
	for _, r := range roles {
		if err := checkID("role", r); err != nil {
			return err
		}
	}
	return nil
}

// checkRolesExist returns an error wrapping ErrNotFound, naming the role,
// for the first role that does not exist in tx.
func checkRolesExist(tx kv.Tx, roles []string) error {
	b := tx.Bucket(bucketRoles)
	for _, r := range roles {
		if b.Get([]byte(r)) == nil {
			return fmt.Errorf("role %q: %w", r, store.ErrNotFound)
		}
	}
	return nil
}

func putUserRoleIndex(tx kv.Tx, userID string, roles []string) error {
	b := tx.Bucket(bucketUsersByRole)
	for _, r := range roles {
		if err := b.Put(usersByRoleKey(r, userID), []byte{}); err != nil {
			return err
		}
	}
	return nil
}

func deleteUserRoleIndex(tx kv.Tx, userID string, roles []string) error {
	b := tx.Bucket(bucketUsersByRole)
	for _, r := range roles {
		if err := b.Delete(usersByRoleKey(r, userID)); err != nil {
			return err
		}
	}
	return nil
}

// CreateUser implements store.Store.
func (s *Records) CreateUser(ctx context.Context, u store.User) error {
	val, err := prepareUser(u)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	id, name := []byte(u.ID), []byte(u.Username)
	err = s.update(ctx, func(tx kv.Tx) error {
		users := tx.Bucket(bucketUsers)
		if users.Get(id) != nil {
			return fmt.Errorf("user ID: %w", store.ErrAlreadyExists)
		}
		byName := tx.Bucket(bucketUsersByName)
		if byName.Get(name) != nil {
			return fmt.Errorf("username %q: %w", u.Username, store.ErrAlreadyExists)
		}
		if err := checkRolesExist(tx, u.Roles); err != nil {
			return err
		}
		if err := users.Put(id, val); err != nil {
			return err
		}
		if err := byName.Put(name, id); err != nil {
			return err
		}
		return putUserRoleIndex(tx, u.ID, u.Roles)
	})
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	return nil
}

// GetUser implements store.Store.
func (s *Records) GetUser(ctx context.Context, id string) (store.User, error) {
	return getOne(s, bucketUsers, id, "user", decodeUser)
}

// userByIndexedID reads the record a users_by_name entry points to. The
// two are written together, so a dangling entry means a damaged file.
func userByIndexedID(tx kv.Tx, id []byte) (store.User, error) {
	v := tx.Bucket(bucketUsers).Get(id)
	if v == nil {
		return store.User{}, fmt.Errorf("corrupt users_by_name: no user %q", id)
	}
	return decodeUser(v)
}

// GetUserByName implements store.Store.
func (s *Records) GetUserByName(ctx context.Context, username string) (store.User, error) {
	var u store.User
	err := s.view(func(tx kv.Tx) error {
		id := tx.Bucket(bucketUsersByName).Get([]byte(username))
		if id == nil {
			return store.ErrNotFound
		}
		var err error
		u, err = userByIndexedID(tx, id)
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("get user by name %q: %w", username, err)
	}
	return u, nil
}

// ListUsers implements store.Store. users_by_name gives the order (bytewise,
// as usernames compare exactly). Database users are few (tens to
// hundreds), so one read transaction stays short.
func (s *Records) ListUsers(ctx context.Context) ([]store.User, error) {
	var users []store.User
	err := s.view(func(tx kv.Tx) error {
		return tx.Bucket(bucketUsersByName).ForEach(func(_, id []byte) error {
			u, err := userByIndexedID(tx, id)
			if err != nil {
				return err
			}
			users = append(users, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// UpdateUser implements store.Store. As for UpdateRole, update runs on the
// committer goroutine inside the write transaction. The roles may change;
// the new ones must exist (an error wrapping ErrNotFound otherwise), and
// users_by_role moves with them in the same transaction.
func (s *Records) UpdateUser(ctx context.Context, id string, update func(store.User) (store.User, error)) (store.User, error) {
	return updateOne(ctx, s, bucketUsers, id, "user", decodeUserRecord, func(tx kv.Tx, cur userRecord) ([]byte, error) {
		// The closure may modify the roles slice in place; the index
		// entries to remove are those of the stored record.
		oldRoles := slices.Clone(cur.Roles)
		next, err := update(cur.user())
		if err != nil {
			return nil, err
		}
		switch {
		case next.ID != id:
			return nil, fmt.Errorf("update must not change the ID (got %q)", next.ID)
		case next.Username != cur.Username:
			return nil, fmt.Errorf("update must not change the username (got %q)", next.Username)
		}
		if err := checkRoleIDs(next.Roles); err != nil {
			return nil, err
		}
		if err := checkRolesExist(tx, next.Roles); err != nil {
			return nil, err
		}
		if err := deleteUserRoleIndex(tx, id, oldRoles); err != nil {
			return nil, err
		}
		if err := putUserRoleIndex(tx, id, next.Roles); err != nil {
			return nil, err
		}
		return encodeUser(next)
	}, decodeUser)
}

// DeleteUser implements store.Store.
func (s *Records) DeleteUser(ctx context.Context, id string) error {
	key := []byte(id)
	err := s.b.Cascade(ctx, func(tx kv.Tx) error {
		users := tx.Bucket(bucketUsers)
		v := users.Get(key)
		if v == nil {
			return store.ErrNotFound
		}
		rec, err := decodeUserRecord(v)
		if err != nil {
			return err
		}
		if err := deleteUserRoleIndex(tx, id, rec.Roles); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsersByName).Delete([]byte(rec.Username)); err != nil {
			return err
		}
		if _, err := deleteAuthTokensOfTx(tx, store.PrincipalUser, id); err != nil {
			return err
		}
		return users.Delete(key)
	}, cascadeOf(store.PrincipalUser, id))
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	return nil
}
