// Package kv is the transaction shape the record code of store/internal/kvrecords
// runs on: bbolt's buckets, keys and cursors, reduced to what that code uses.
// store/bolt adapts *bbolt.Tx to it; store/etcd's mirror transactions
// implement it directly. Values returned by Get and cursors are valid only
// until the transaction ends and must not be modified.
package kv

// Tx is a read or read-write transaction.
type Tx interface {
	// Bucket returns the bucket named name; every bucket of the layout
	// exists.
	Bucket(name []byte) Bucket
}

// Bucket is one record kind or index: a sorted set of keys.
type Bucket interface {
	// Get returns the value under key, or nil when it is absent.
	Get(key []byte) []byte
	// GetString is Get with a string key. (Converting a string to a key
	// for a call through this interface would allocate, the compiler
	// cannot see that Get keeps no reference to it; behind the interface
	// the conversion is free. For the credential-check reads.)
	GetString(key string) []byte
	// Put stores value under key.
	Put(key, value []byte) error
	// Delete removes key (an absent key is fine).
	Delete(key []byte) error
	// ForEach calls fn for every key, in key order.
	ForEach(fn func(k, v []byte) error) error
	// NextSequence returns the bucket's next sequence number (1, 2, …).
	NextSequence() (uint64, error)
	// Cursor returns a cursor over the bucket.
	Cursor() Cursor
}

// Cursor walks a bucket in key order. Each method returns a nil key once
// it runs off the bucket.
type Cursor interface {
	// First moves to the first key.
	First() (key, value []byte)
	// Seek moves to the first key >= seek.
	Seek(seek []byte) (key, value []byte)
	// Next moves to the key after the current one.
	Next() (key, value []byte)
}
