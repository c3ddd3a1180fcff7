package bolt

import (
	"testing"
	"time"
)

// The regrouping wait never holds a batch that already has the writers it
// expects, ends as soon as they are queued, and ends when the committer
// is closed. (No assertion on time: only on what the batch holds.)
func TestRegroupingWait(t *testing.T) {
	req := func() *writeReq { return &writeReq{done: make(chan error, 1)} }

	var g regrouping // no commit yet: nothing to wait for
	if got := g.wait(make(chan *writeReq), []*writeReq{req()}, 10); len(got) != 1 {
		t.Fatalf("first batch: %d requests, want 1", len(got))
	}

	g.committed(1, 0, time.Hour) // a lone writer: its own request completes the batch
	if got := g.wait(make(chan *writeReq), []*writeReq{req()}, 10); len(got) != 1 {
		t.Fatalf("lone writer: %d requests, want 1", len(got))
	}

	g.committed(3, 1, time.Hour)     // four writers active: wait for the other three
	g.patience = time.Hour           // beyond the cap: the arrivals below come however slow the machine is
	arriving := make(chan *writeReq) // unbuffered: each request is taken by the wait
	go func() {
		for range 3 {
			arriving <- req()
		}
	}()
	if got := g.wait(arriving, []*writeReq{req()}, 10); len(got) != 4 {
		t.Fatalf("four writers: %d requests, want 4", len(got))
	}

	g.committed(5, 0, time.Hour) // already queued: no wait (the committer's drain takes them)
	reqs := make(chan *writeReq, 10)
	for range 4 {
		reqs <- req()
	}
	if got := g.wait(reqs, []*writeReq{req()}, 10); len(got) != 1 || len(reqs) != 4 {
		t.Fatalf("already queued: %d requests taken, %d left, want 1 and 4", len(got), len(reqs))
	}
	for range 4 {
		<-reqs
	}

	g.committed(5, 0, time.Hour) // capped by max
	g.patience = time.Hour
	go func() { arriving <- req() }()
	if got := g.wait(arriving, []*writeReq{req()}, 2); len(got) != 2 {
		t.Fatalf("max 2: %d requests, want 2", len(got))
	}

	g.committed(5, 0, time.Hour) // closed while waiting
	closed := make(chan *writeReq)
	close(closed)
	if got := g.wait(closed, []*writeReq{req()}, 10); len(got) != 1 {
		t.Fatalf("closed: %d requests, want 1", len(got))
	}

	g.committed(5, 0, time.Millisecond) // writers that never come back: the wait ends
	if got := g.wait(make(chan *writeReq), []*writeReq{req()}, 10); len(got) != 1 {
		t.Fatalf("timed out: %d requests, want 1", len(got))
	}
}
