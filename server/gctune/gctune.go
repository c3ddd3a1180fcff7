// Package gctune paces the garbage collector for a process whose live
// heap is small and whose allocation rate is high, as the broker's is
// under Check load: a few MB live, several KB allocated per call.
//
// With Go's default (GOGC=100) a collection starts each time the heap has
// grown by the live heap, so a 5 MB heap is collected every 5 MB of
// allocation, dozens of times a second under load. Each cycle has a fixed
// cost, and it shrinks the stacks of parked goroutines (gRPC's stream
// workers), which the next call then grows again: both showed in CPU
// profiles of the Check path. The tuner sets GOGC after every collection
// so that the next one starts when the heap has grown by the larger of the
// live heap and a floor: the default behaviour for a heap above the floor,
// and at most floor bytes more memory for a smaller one. It is the
// dynamic-GOGC technique of large Go deployments, kept deliberately small.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// DefaultFloor is the least heap growth between two collections.
const DefaultFloor = 32 << 20

// maxPercent bounds GOGC when the live heap is tiny (start-up).
const maxPercent = 1000

// Tuner adjusts GOGC after each collection until stopped.
type Tuner struct {
	floor   uint64
	stopped atomic.Bool
	percent atomic.Int64 // the GOGC last set
	sample  []metrics.Sample
}

// Start starts tuning with the given floor, unless the environment sets
// GOGC (an operator's explicit choice wins, and GOGC=100 restores Go's
// default pacing): then it returns nil. GOMEMLIMIT, if set, still applies.
func Start(floor uint64) *Tuner {
	if _, set := os.LookupEnv("GOGC"); set || floor == 0 {
		return nil
	}
	t := &Tuner{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	t.arm()
	return t
}

// Stop stops tuning and restores GOGC=100. Safe on a nil Tuner.
func (t *Tuner) Stop() {
	if t == nil || t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(100)
}

// Percent is the GOGC the tuner last set (0 on a nil Tuner).
func (t *Tuner) Percent() int {
	if t == nil {
		return 0
	}
	return int(t.percent.Load())
}

// arm allocates an unreachable sentinel whose finalizer runs after the next
// collection: the one hook the runtime offers for "a cycle ended".
func (t *Tuner) arm() {
	s := new(sentinel)
	runtime.SetFinalizer(s, func(*sentinel) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	})
}

// sentinel is large enough not to be batched with other tiny objects
// (whose finalizers may never run).
type sentinel struct{ _ [32]byte }

func (t *Tuner) adjust() {
	metrics.Read(t.sample) // only the finalizer goroutine (or Start) calls this
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.floor)
	if int64(p) != t.percent.Load() {
		t.percent.Store(int64(p))
		debug.SetGCPercent(p)
	}
}

// Percent is the GOGC that makes the next collection start after
// max(live, floor) bytes of growth, between 100 and 1000.
func Percent(live, floor uint64) int {
	if live >= floor {
		return 100
	}
	if live == 0 || floor/live >= maxPercent/100 {
		return maxPercent
	}
	return int(floor * 100 / live)
}
