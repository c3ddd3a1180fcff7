package linearizability

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Never is the return time of an operation whose outcome is unknown: the
// end of any history, so the checker may linearize it anywhere after its
// call.
const Never int64 = math.MaxInt64

// History records operations from concurrent clients. Times are
// nanoseconds since the history began, read from the monotonic clock.
// Safe for concurrent use.
type History struct {
	start time.Time

	mu  sync.Mutex
	ops []porcupine.Operation
}

// NewHistory starts an empty history now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the current time of the history, for an operation's call or
// return.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Add records one operation by client (a small integer, for the
// visualisation). An Unknown output gets the return time Never, whatever
// ret says.
func (h *History) Add(client int, in Input, out Output, call, ret int64) {
	if out.Result == Unknown {
		ret = Never
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	h.mu.Unlock()
}

// Operations returns a copy of the recorded operations.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

// Stats counts a history's operations.
type Stats struct {
	Ops     int
	ByVerb  map[Verb]int
	Unknown int // operations with an unknown outcome
	Keys    int // distinct tokens
}

func (s Stats) String() string {
	return fmt.Sprintf("%d ops (%d create, %d delete, %d check; %d unknown) on %d tokens",
		s.Ops, s.ByVerb[Create], s.ByVerb[Delete], s.ByVerb[CheckCred], s.Unknown, s.Keys)
}

// StatsOf counts ops.
func StatsOf(ops []porcupine.Operation) Stats {
	s := Stats{Ops: len(ops), ByVerb: map[Verb]int{}}
	keys := map[string]bool{}
	for _, op := range ops {
		in := op.Input.(Input)
		s.ByVerb[in.Verb]++
		keys[in.Key] = true
		if op.Output.(Output).Result == Unknown {
			s.Unknown++
		}
	}
	s.Keys = len(keys)
	return s
}

// Verdict is the outcome of Check.
type Verdict struct {
	Result porcupine.CheckResult // Ok, Illegal, or Unknown (the checker timed out)
	Stats  Stats
	// Visualization is the path of the HTML visualisation written when
	// the history is not linearizable (or could not be decided), "" else.
	Visualization string
}

// Check decides whether ops are linearizable under Model, giving up after
// timeout (Result Unknown). Unless the result is Ok, it writes porcupine's
// visualisation of the history into dir (os.TempDir() when "") and names
// the file in the verdict.
func Check(ops []porcupine.Operation, timeout time.Duration, dir string) (Verdict, error) {
	res, info := porcupine.CheckOperationsVerbose(Model, ops, timeout)
	v := Verdict{Result: res, Stats: StatsOf(ops)}
	if res == porcupine.Ok {
		return v, nil
	}
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "linearizability-*.html")
	if err != nil {
		return v, fmt.Errorf("write visualisation: %w", err)
	}
	defer f.Close()
	if err := porcupine.Visualize(Model, info, f); err != nil {
		return v, fmt.Errorf("write visualisation: %w", err)
	}
	v.Visualization, _ = filepath.Abs(f.Name())
	return v, f.Close()
}
