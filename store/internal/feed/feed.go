// Package feed is the subscriber list behind a backend's change feed
// (store.ChangeNotifier): store/bolt publishes each committed batch from its
// committer, store/etcd each watch response from its watch loop. Both call
// Publish from one goroutine, so subscribers see batches in commit order.
package feed

import (
	"sync"

	"github.com/tokenbroker/tokenbroker/store"
)

// Feed holds the subscribers. The zero value is ready to use.
type Feed struct {
	mu   sync.Mutex
	next int
	subs map[int]func([]store.Change)
}

// Subscribe implements store.ChangeNotifier.
func (f *Feed) Subscribe(fn func([]store.Change)) (cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[int]func([]store.Change){}
	}
	id := f.next
	f.next++
	f.subs[id] = fn
	return func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	}
}

// Publish calls every subscriber with changes, in the caller's goroutine.
// The list is copied first, so a subscriber may cancel itself (or another)
// from inside its call.
func (f *Feed) Publish(changes []store.Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	subs := make([]func([]store.Change), 0, len(f.subs))
	for _, fn := range f.subs {
		subs = append(subs, fn)
	}
	f.mu.Unlock()
	for _, fn := range subs {
		fn(changes)
	}
}
