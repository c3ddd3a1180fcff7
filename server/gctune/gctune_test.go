package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 32 << 20, 1000},
		{1 << 20, 32 << 20, 1000}, // 32x: capped
		{4 << 20, 32 << 20, 800},
		{16 << 20, 32 << 20, 200},
		{32 << 20, 32 << 20, 100},
		{64 << 20, 32 << 20, 100}, // above the floor: Go's default
	} {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

func currentGOGC() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTunerFollowsCollections(t *testing.T) {
	if v, set := os.LookupEnv("GOGC"); set {
		os.Unsetenv("GOGC")
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	tu := Start(DefaultFloor)
	if tu == nil {
		t.Fatal("Start without GOGC in the environment returned nil")
	}
	// The test binary's live heap is far below the floor.
	for range 3 {
		runtime.GC()
	}
	if p := tu.Percent(); p <= 100 || currentGOGC() != p {
		t.Fatalf("after collections of a small heap: tuner %d, GOGC %d; want the same value above 100", p, currentGOGC())
	}
	tu.Stop()
	runtime.GC()
	runtime.GC()
	if p := currentGOGC(); p != 100 {
		t.Fatalf("after Stop: GOGC %d, want 100", p)
	}
}

func TestExplicitGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	if tu := Start(DefaultFloor); tu != nil {
		tu.Stop()
		t.Fatal("Start tuned although GOGC is set")
	}
	var none *Tuner
	none.Stop() // safe
	if none.Percent() != 0 {
		t.Fatal("nil tuner's percent")
	}
}
