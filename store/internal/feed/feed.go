// Package feed is the subscriber list behind a backend's change feed
// (store.ChangeNotifier): store/bolt publishes each committed batch from its
// committer, store/etcd each watch response from its watch loop. Both call
// Publish (and Open and Close around it) from one goroutine, so subscribers
// see batches in commit order.
package feed

import (
	"sync"

	"github.com/tokenbroker/tokenbroker/store"
)

// Feed holds the subscribers. The zero value is ready to use.
type Feed struct {
	mu      sync.Mutex
	next    int
	subs    map[int]func([]store.Change)
	windows map[int]window
}

type window struct{ opening, closing func([]store.Change) }

// Subscribe implements store.ChangeNotifier.
func (f *Feed) Subscribe(fn func([]store.Change)) (cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[int]func([]store.Change){}
	}
	id := f.add()
	f.subs[id] = fn
	return func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	}
}

// SubscribeWindows implements store.ChangeNotifier.
func (f *Feed) SubscribeWindows(opening, closing func([]store.Change)) (cancel func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.windows == nil {
		f.windows = map[int]window{}
	}
	id := f.add()
	f.windows[id] = window{opening, closing}
	return func() {
		f.mu.Lock()
		delete(f.windows, id)
		f.mu.Unlock()
	}
}

func (f *Feed) add() int {
	id := f.next
	f.next++
	return id
}

// Publish calls every subscriber with changes, in the caller's goroutine.
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

// Windowed reports whether anyone subscribed to windows, so that a
// backend can skip preparing them.
func (f *Feed) Windowed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.windows) > 0
}

// Open calls every window subscriber's opening with changes; the backend
// must call Close with the same changes once the window ends.
func (f *Feed) Open(changes []store.Change) { f.each(changes, true) }

// Close calls every window subscriber's closing with changes.
func (f *Feed) Close(changes []store.Change) { f.each(changes, false) }

func (f *Feed) each(changes []store.Change, opening bool) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	fns := make([]func([]store.Change), 0, len(f.windows))
	for _, w := range f.windows {
		if opening {
			fns = append(fns, w.opening)
		} else {
			fns = append(fns, w.closing)
		}
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(changes)
	}
}
