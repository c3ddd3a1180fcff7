package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Credential kinds a session can hold.
const (
	kindAppToken  = "application-token" // pasted AstraCS token: never revoked by sign-out (that would delete it)
	kindAuthToken = "auth-token"        // minted by a login: revoked by sign-out
)

// session is what the opaque cookie value maps to. The credential never
// leaves the server: the browser holds only a random session ID.
type session struct {
	credential string
	kind       string
	principal  string // "application-token <clientId>" or "user <id>", for the header
	orgID      string
	csrf       string
	nav        navigation
	created    time.Time
	lastSeen   time.Time
}

// navigation records which pages the credential may use, found at sign-in
// by trying each page's list call (a 403 hides the page).
type navigation struct {
	Tokens, Roles, Streaming, Databases, Audit bool
}

// sessions is a bounded in-memory map from hashed session IDs to sessions.
// Keys are SHA-256 of the cookie value so the map's lookup timing says
// nothing about the IDs it holds. A restart signs everyone out, which is
// the safe direction.
type sessions struct {
	mu       sync.Mutex
	byHash   map[[32]byte]*session
	max      int
	idle     time.Duration
	lifetime time.Duration
	now      func() time.Time
}

func newSessions(max int, idle, lifetime time.Duration, now func() time.Time) *sessions {
	return &sessions{byHash: map[[32]byte]*session{}, max: max, idle: idle, lifetime: lifetime, now: now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// add stores s and returns its new session ID. When full, the session idle
// the longest is dropped first.
func (m *sessions) add(s *session) string {
	id := randomToken()
	now := m.now()
	s.created, s.lastSeen, s.csrf = now, now, randomToken()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked(now)
	for len(m.byHash) >= m.max {
		var oldest [32]byte
		var found *session
		for k, v := range m.byHash {
			if found == nil || v.lastSeen.Before(found.lastSeen) {
				oldest, found = k, v
			}
		}
		delete(m.byHash, oldest)
	}
	m.byHash[sha256.Sum256([]byte(id))] = s
	return id
}

// get returns the live session for id (and refreshes its idle timer), or nil.
func (m *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byHash[k]
	if !ok {
		return nil
	}
	if m.expired(s, now) {
		delete(m.byHash, k)
		return nil
	}
	s.lastSeen = now
	return s
}

func (m *sessions) remove(id string) {
	m.mu.Lock()
	delete(m.byHash, sha256.Sum256([]byte(id)))
	m.mu.Unlock()
}

func (m *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) > m.idle || now.Sub(s.created) > m.lifetime
}

func (m *sessions) expireLocked(now time.Time) {
	for k, s := range m.byHash {
		if m.expired(s, now) {
			delete(m.byHash, k)
		}
	}
}

// validCSRF compares the submitted synchronizer token in constant time.
func (s *session) validCSRF(submitted string) bool {
	return submitted != "" && subtle.ConstantTimeCompare([]byte(submitted), []byte(s.csrf)) == 1
}
