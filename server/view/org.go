package view

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/tokenbroker/tokenbroker/store"
)

// tokenPolicy is the organization's lifetime policy, kept so that creating
// a token does not read the organization record.
type tokenPolicy struct {
	loadMu sync.Mutex // makes each reload atomic, as roleCache.loadMu
	p      atomic.Pointer[store.TokenPolicy]
}

// TokenPolicy returns the organization's lifetime policy for new tokens.
func (v *View) TokenPolicy() store.TokenPolicy {
	if p := v.policy.p.Load(); p != nil {
		return *p
	}
	return store.TokenPolicy{}
}

// reloadPolicy installs the stored organization's policy.
func (v *View) reloadPolicy(ctx context.Context) error {
	v.policy.loadMu.Lock()
	defer v.policy.loadMu.Unlock()
	org, err := v.Store.GetOrganization(ctx)
	if err != nil {
		return err
	}
	p := org.TokenPolicy
	v.policy.p.Store(&p)
	return nil
}
