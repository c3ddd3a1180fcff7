package etcd

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/google/btree"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenbroker/tokenbroker/store/internal/kv"
	"github.com/tokenbroker/tokenbroker/store/internal/kvrecords"
)

// Tx is a transaction over the mirror, shaped like a bbolt transaction
// (buckets, Get/Put/Delete, cursors: store/internal/kv) so that the record
// logic of store/internal/kvrecords runs on it as on bbolt. A bucket is a sub-prefix of the installation's prefix
// ("tokens/", "tokens_by_role/", …).
//
// A writable Tx reads from a snapshot of the mirror at revision base and
// buffers its writes in an overlay. It records what it read from the
// snapshot: each key with the mod revision it had (0: absent), and each
// range a cursor walked. Committing turns those into compares of one etcd
// Txn (key: "mod revision still equal"; range: "no key in it modified after
// base"), and the overlay into its Puts and Deletes. So the transaction
// commits only if everything it read is unchanged: it is serializable, and
// a stale mirror costs a retry, never a wrong write. (A range compare does
// not see a key deleted from the range; every use here is monotone in such
// deletions: counting live tokens, finding holders of a role, cascading
// deletes of keys that may already be gone.)
type Tx struct {
	base     *btree.BTreeG[item]
	baseRev  int64
	writable bool

	overlay *btree.BTreeG[write]
	reads   map[string]int64
	ranges  []*keyRange
	undo    []undoEntry
	bytes   int // approximate request size of the overlay
}

// write is a buffered Put (del false) or Delete.
type write struct {
	key string
	val []byte
	del bool
}

func writeLess(a, b write) bool { return a.key < b.key }

type keyRange struct{ start, end string }

// undoEntry reverts one change to the overlay or the read set.
type undoEntry struct {
	key     string
	prev    write
	hadPrev bool
	read    bool // undo of a recorded read
}

func newReadTx(base *btree.BTreeG[item], rev int64) *Tx {
	return &Tx{base: base, baseRev: rev}
}

func newWriteTx(base *btree.BTreeG[item], rev int64) *Tx {
	return &Tx{
		base: base, baseRev: rev, writable: true,
		overlay: btree.NewG(16, writeLess),
		reads:   map[string]int64{},
	}
}

// txMark is a point the transaction can be rolled back to.
type txMark struct{ undo, ranges, bytes int }

func (tx *Tx) mark() txMark { return txMark{len(tx.undo), len(tx.ranges), tx.bytes} }

// rollback reverts every change made after m: one request of a batch that
// failed leaves nothing behind for the others.
func (tx *Tx) rollback(m txMark) {
	for i := len(tx.undo) - 1; i >= m.undo; i-- {
		u := tx.undo[i]
		switch {
		case u.read:
			delete(tx.reads, u.key)
		case u.hadPrev:
			tx.overlay.ReplaceOrInsert(u.prev)
		default:
			tx.overlay.Delete(write{key: u.key})
		}
	}
	tx.undo = tx.undo[:m.undo]
	tx.ranges = tx.ranges[:m.ranges]
	tx.bytes = m.bytes
}

// Bucket returns the bucket named name.
func (tx *Tx) Bucket(name []byte) kv.Bucket {
	if r, ok := bucketRanges[string(name)]; ok {
		return &Bucket{tx: tx, prefix: r.start, end: r.end}
	}
	r := bucketRange(string(name))
	return &Bucket{tx: tx, prefix: r.start, end: r.end}
}

// bucketRanges holds every bucket's key range, built once: every read asks
// for buckets.
var bucketRanges = func() map[string]keyRange {
	m := make(map[string]keyRange, len(kvrecords.Buckets))
	for _, name := range kvrecords.Buckets {
		m[string(name)] = bucketRange(string(name))
	}
	return m
}()

func bucketRange(name string) keyRange {
	return keyRange{start: name + "/", end: name + "0"} // '0' follows '/'
}

func (tx *Tx) get(key string) []byte {
	if tx.writable {
		if w, ok := tx.overlay.Get(write{key: key}); ok {
			if w.del {
				return nil
			}
			return w.val
		}
	}
	it, ok := tx.base.Get(item{key: key})
	if tx.writable {
		if _, seen := tx.reads[key]; !seen {
			tx.reads[key] = it.mod // 0 when absent: "still absent"
			tx.undo = append(tx.undo, undoEntry{key: key, read: true})
		}
	}
	if !ok {
		return nil
	}
	return it.val
}

func (tx *Tx) set(w write) error {
	if !tx.writable {
		return fmt.Errorf("write in a read-only transaction")
	}
	prev, had := tx.overlay.ReplaceOrInsert(w)
	tx.undo = append(tx.undo, undoEntry{key: w.key, prev: prev, hadPrev: had})
	tx.bytes += len(w.key) + len(w.val) + 16
	return nil
}

// seek returns the first key >= from and < end in the merged view (overlay
// over snapshot).
func (tx *Tx) seek(from, end string) (string, []byte, bool) {
	for {
		var bi item
		bok := false
		tx.base.AscendGreaterOrEqual(item{key: from}, func(it item) bool {
			if it.key < end {
				bi, bok = it, true
			}
			return false
		})
		var wi write
		wok := false
		if tx.writable {
			tx.overlay.AscendGreaterOrEqual(write{key: from}, func(w write) bool {
				if w.key < end {
					wi, wok = w, true
				}
				return false
			})
		}
		switch {
		case !bok && !wok:
			return "", nil, false
		case wok && (!bok || wi.key <= bi.key):
			if wi.del {
				from = wi.key + "\x00"
				continue
			}
			return wi.key, wi.val, true
		default:
			return bi.key, bi.val, true
		}
	}
}

// ops returns the transaction's compares and operations (keys with the
// installation prefix), in key order so that the request is deterministic.
func (tx *Tx) ops(prefix string) ([]clientv3.Cmp, []clientv3.Op) {
	keys := make([]string, 0, len(tx.reads))
	for k := range tx.reads {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cmps := make([]clientv3.Cmp, 0, len(keys)+len(tx.ranges))
	for _, k := range keys {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(prefix+k), "=", tx.reads[k]))
	}
	for _, r := range mergeRanges(tx.ranges) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(prefix+r.start), "<", tx.baseRev+1).
			WithRange(prefix+r.end))
	}
	var ops []clientv3.Op
	tx.overlay.Ascend(func(w write) bool {
		if w.del {
			ops = append(ops, clientv3.OpDelete(prefix+w.key))
		} else {
			ops = append(ops, clientv3.OpPut(prefix+w.key, string(w.val)))
		}
		return true
	})
	return cmps, ops
}

// size reports how many compares and operations the transaction holds and
// its approximate request size, to keep batches within etcd's limits.
func (tx *Tx) size() (cmps, ops, bytes int) {
	return len(tx.reads) + len(mergeRanges(tx.ranges)), tx.overlay.Len(), tx.bytes + 64*len(tx.reads)
}

// mergeRanges merges overlapping ranges (several cursors over one bucket).
func mergeRanges(rs []*keyRange) []keyRange {
	if len(rs) == 0 {
		return nil
	}
	out := make([]keyRange, 0, len(rs))
	for _, r := range rs {
		if r.end > r.start {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, r.end)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// Bucket is one record kind or index: the keys under one sub-prefix.
type Bucket struct {
	tx     *Tx
	prefix string
	end    string
}

// Get returns the value under key, or nil.
func (b *Bucket) Get(key []byte) []byte { return b.tx.get(b.prefix + string(key)) }

// GetString is Get with a string key.
func (b *Bucket) GetString(key string) []byte { return b.tx.get(b.prefix + key) }

// Put stores value under key when the transaction commits.
func (b *Bucket) Put(key, value []byte) error {
	return b.tx.set(write{key: b.prefix + string(key), val: append([]byte{}, value...)})
}

// Delete removes key when the transaction commits (absent keys are fine).
func (b *Bucket) Delete(key []byte) error {
	return b.tx.set(write{key: b.prefix + string(key), del: true})
}

// ForEach calls fn for every key of the bucket, in key order.
func (b *Bucket) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// NextSequence returns the bucket's next sequence number (1, 2, …). The
// counter is a key of the meta bucket, read and written in this
// transaction, so the number is committed exactly when the transaction is,
// and two writers can never commit the same one (the second's compare on
// the counter fails): committed numbers increase with commit order and
// leave no gaps.
func (b *Bucket) NextSequence() (uint64, error) {
	key := string(bucketMeta) + "/seq/" + b.prefix[:len(b.prefix)-1]
	var n uint64
	if v := b.tx.get(key); v != nil {
		if len(v) != 8 {
			return 0, fmt.Errorf("corrupt sequence counter %q", key)
		}
		n = binary.BigEndian.Uint64(v)
	}
	n++
	return n, b.tx.set(write{key: key, val: binary.BigEndian.AppendUint64(nil, n)})
}

// Cursor returns a cursor over the bucket.
func (b *Bucket) Cursor() kv.Cursor { return &Cursor{b: b} }

// Cursor walks a bucket in key order (bbolt's First/Seek/Next). In a
// writable transaction every walk is recorded as a range read, from where
// it started to the last key it returned (to the bucket's end once it runs
// off it).
type Cursor struct {
	b    *Bucket
	last string
	r    *keyRange
	done bool
}

// First moves to the first key of the bucket.
func (c *Cursor) First() ([]byte, []byte) { return c.Seek(nil) }

// Seek moves to the first key >= k.
func (c *Cursor) Seek(k []byte) ([]byte, []byte) {
	from := c.b.prefix + string(k)
	c.r = nil
	if c.b.tx.writable {
		c.r = &keyRange{start: from, end: from}
		c.b.tx.ranges = append(c.b.tx.ranges, c.r)
	}
	return c.from(from)
}

// Next moves to the key after the current one.
func (c *Cursor) Next() ([]byte, []byte) {
	if c.done {
		return nil, nil
	}
	return c.from(c.last + "\x00")
}

func (c *Cursor) from(from string) ([]byte, []byte) {
	key, val, ok := c.b.tx.seek(from, c.b.end)
	if !ok {
		c.done = true
		if c.r != nil {
			c.r.end = c.b.end
		}
		return nil, nil
	}
	c.done = false
	c.last = key
	if c.r != nil {
		c.r.end = key + "\x00"
	}
	return []byte(key[len(c.b.prefix):]), val
}
