package bolt

import (
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/internal/kv"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

var _ store.ChangeNotifier = (*Store)(nil)

// The change feed. Only this process writes the file, so the feed is this
// process's own commits: every write function runs on the committer's
// transaction through writeTx, which notes each record key it puts or
// deletes (kvrecords.ChangeKindOf: the same kinds and keys store/etcd
// reports for the same write). After a batch's transaction has committed
// (fsynced: the changes are durable and every read returns them) and
// before any caller of the batch is answered, the committer hands the
// batch's changes to the subscribers. So a subscriber has seen a write's
// changes before the write returns (read-your-writes for whatever it keeps
// beside the store), and never sees a change that did not commit: a
// rolled-back or failed transaction's notes are dropped with it.
//
// Subscribers run on the committer goroutine, between a commit and its
// answers: they must be quick, may read the store, and must not write to it
// (the write would wait for the committer, which waits for them).

// Subscribe implements store.ChangeNotifier.
func (s *Store) Subscribe(fn func([]store.Change)) (cancel func()) {
	return s.feed.Subscribe(fn)
}

// SubscribeWindows implements store.ChangeNotifier: a batch's window opens
// once its write functions have run, before the transaction commits (a
// read transaction begun after the commit writes its meta page sees the
// batch, before the commit returns), and closes after the feed's delivery
// or the failed commit.
func (s *Store) SubscribeWindows(opening, closing func([]store.Change)) (cancel func()) {
	return s.feed.SubscribeWindows(opening, closing)
}

// txChanges collects the changes of the committer's current transaction.
// It is used only on the committer goroutine. It also holds that
// transaction's write handle (writeTx) and the buckets handed out in it, so
// that a batch's write functions share one handle and one writeBucket per
// bucket instead of allocating their own in every function.
type txChanges struct {
	at   map[changeKey]int // → index in list
	list []store.Change

	wtx     writeTx        // wtx.tx: the transaction the handles belong to
	buckets []*writeBucket // of wtx.tx, looked up by name (a handful)
}

// changeKey names a record: its bucket and key. Key is the same string as
// the Change's.
type changeKey struct{ bucket, key string }

// reset forgets the notes of a transaction that is being re-run.
func (c *txChanges) reset() {
	clear(c.at)
	c.list = c.list[:0]
}

// writeTx returns the write handle of tx, the committer's transaction.
func (c *txChanges) writeTx(tx *bbolt.Tx) *writeTx {
	if c.wtx.tx != tx {
		c.endTx()
		c.wtx = writeTx{tx: tx, rec: c}
	}
	return &c.wtx
}

// endTx drops the handles of a transaction that has ended (bbolt buckets
// are valid only within their transaction), so that the next one starts
// afresh and the ended one is not kept reachable.
func (c *txChanges) endTx() {
	c.wtx = writeTx{}
	clear(c.buckets)
	c.buckets = c.buckets[:0]
}

// note records a put (deleted false) or delete of key in bucket, if the
// bucket holds records the feed reports. A key written twice in one
// transaction is one change, with the last write's outcome, as an etcd
// transaction (one operation per key) reports it.
func (c *txChanges) note(bucket string, key []byte, deleted bool) {
	kind, ok := kvrecords.ChangeKindOf(bucket)
	if !ok {
		return
	}
	if i, ok := c.at[changeKey{bucket, string(key)}]; ok { // (no allocation for the lookup)
		c.list[i].Deleted = deleted
		return
	}
	if c.at == nil {
		c.at = map[changeKey]int{}
	}
	k := string(key)
	c.at[changeKey{bucket, k}] = len(c.list)
	c.list = append(c.list, store.Change{Kind: kind, Key: k, Deleted: deleted})
}

// peek returns a sorted copy of the notes so far (a window's changes).
func (c *txChanges) peek() []store.Change {
	out := slices.Clone(c.list)
	sortChanges(out)
	return out
}

// take returns the notes in key order (bucket, then key: the order of the
// events of one etcd transaction) and starts a fresh list, since
// subscribers may keep the slice.
func (c *txChanges) take() []store.Change {
	out := c.list
	c.list = nil
	clear(c.at)
	sortChanges(out)
	return out
}

func sortChanges(list []store.Change) {
	slices.SortFunc(list, func(a, b store.Change) int {
		if d := strings.Compare(bucketOf[a.Kind], bucketOf[b.Kind]); d != 0 {
			return d
		}
		return strings.Compare(a.Key, b.Key)
	})
}

// bucketOf is the inverse of kvrecords.ChangeKindOf, for take's order.
var bucketOf = func() map[store.ChangeKind]string {
	m := map[store.ChangeKind]string{}
	for _, b := range allBuckets {
		if k, ok := kvrecords.ChangeKindOf(string(b)); ok {
			m[k] = string(b)
		}
	}
	return m
}()

// writeTx is the kv.Tx of the committer's transaction: boltTx, plus the
// notes of what it writes. There is one per transaction (txChanges.writeTx).
// (Reads keep the pointer-sized boltTx, which converts to an interface
// without allocating.)
type writeTx struct {
	tx  *bbolt.Tx
	rec *txChanges
}

func (t *writeTx) Bucket(name []byte) kv.Bucket {
	for _, b := range t.rec.buckets {
		if b.name == string(name) {
			return b
		}
	}
	b := t.tx.Bucket(name)
	setFillPercent(b, name) // schema.go: every write reaches bbolt through here
	wb := &writeBucket{boltBucket: boltBucket{b}, name: string(name), rec: t.rec}
	t.rec.buckets = append(t.rec.buckets, wb)
	return wb
}

type writeBucket struct {
	boltBucket
	name string
	rec  *txChanges
}

func (b *writeBucket) Put(key, value []byte) error {
	if err := b.b.Put(key, value); err != nil {
		return err
	}
	b.rec.note(b.name, key, false)
	return nil
}

func (b *writeBucket) Delete(key []byte) error {
	if err := b.b.Delete(key); err != nil {
		return err
	}
	b.rec.note(b.name, key, true)
	return nil
}
