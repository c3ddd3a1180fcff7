package bolt

import (
	"bufio"
	"encoding/binary"
	"hash/fnv"
	"io"
	"log/slog"
	"os"

	"go.etcd.io/bbolt"
)

// bbolt keeps the list of free pages in memory. With NoFreelistSync (set in
// Open) commits do not write it, so opening a file means rebuilding it by
// walking every page reachable from the root: at a million tokens that walk
// was most of start-up, and on a file the page cache does not hold it
// faulted a gigabyte in page by page. Two things keep a restart quick:
//
//   - a clean Close saves the list with one last commit (saveFreelist), so
//     the next Open reads one page instead of walking the file. The first
//     commit after that Open (bbolt's own rule for NoFreelistSync) frees the
//     saved page and marks the list absent again, so a crash later can
//     never leave a stale list behind: an absent list is always rebuilt.
//   - when the list is absent (the last run did not close cleanly), Open
//     first reads the file through once (readAheadIfFreelistAbsent), so the
//     walk finds its pages in memory instead of waiting for each in turn.
//
// Whether the list is saved is read from the file's meta pages before
// bbolt opens it (freelistSaved). A wrong answer there costs only time,
// never correctness: bbolt decides for itself from the same pages.

// saveFreelist commits once with the free-page list written, after the
// committer has stopped and before the file is closed. A failure is only
// logged: the next Open then rebuilds the list, as after a crash.
func (s *Store) saveFreelist() {
	// No write transaction can run now (the committer has stopped), and
	// read transactions do not look at NoFreelistSync.
	s.db.NoFreelistSync = false
	err := s.db.Update(func(*bbolt.Tx) error { return nil })
	s.db.NoFreelistSync = true
	if err != nil {
		s.log.Warn("could not save the free-page list; the next open rebuilds it", "err", err)
	}
}

// bbolt's on-disk meta page (go.etcd.io/bbolt/internal/common: page header,
// then Meta), little-endian on every platform bbolt supports here.
const (
	metaOffset         = 16 // the page header: id, flags, count, overflow
	metaMagicAt        = metaOffset + 0
	metaPageSizeAt     = metaOffset + 8
	metaFreelistAt     = metaOffset + 32 // after magic, version, page size, flags, root bucket
	metaTxidAt         = metaOffset + 48
	metaChecksumAt     = metaOffset + 56
	boltMagic          = 0xED0CDAED
	pgidNoFreelist     = ^uint64(0)
	minMetaPage        = metaChecksumAt + 8
	maxSupportedPageSz = 1 << 16
)

// freelistSaved reports whether the newest valid meta page of the bbolt
// file at path names a saved free-page list. ok is false when the file does
// not exist or holds no valid meta page.
func freelistSaved(path string) (saved, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return false, false
	}
	defer f.Close()
	first := make([]byte, minMetaPage)
	if _, err := io.ReadFull(f, first); err != nil {
		return false, false
	}
	var newest []byte
	consider := func(m []byte) {
		if !validMeta(m) {
			return
		}
		if newest == nil || binary.LittleEndian.Uint64(m[metaTxidAt:]) > binary.LittleEndian.Uint64(newest[metaTxidAt:]) {
			newest = m
		}
	}
	consider(first)
	// The second meta page is one page in; its size is in the first (or,
	// if the first is damaged, bbolt's default of the OS page size).
	pageSize := int64(os.Getpagesize())
	if validMeta(first) {
		pageSize = int64(binary.LittleEndian.Uint32(first[metaPageSizeAt:]))
	}
	if pageSize > 0 && pageSize <= maxSupportedPageSz {
		second := make([]byte, minMetaPage)
		if _, err := f.ReadAt(second, pageSize); err == nil {
			consider(second)
		}
	}
	if newest == nil {
		return false, false
	}
	return binary.LittleEndian.Uint64(newest[metaFreelistAt:]) != pgidNoFreelist, true
}

// validMeta checks a meta page's magic number and checksum (FNV-64a of the
// meta fields before the checksum), as bbolt does.
func validMeta(m []byte) bool {
	if binary.LittleEndian.Uint32(m[metaMagicAt:]) != boltMagic {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write(m[metaOffset:metaChecksumAt])
	return h.Sum64() == binary.LittleEndian.Uint64(m[metaChecksumAt:])
}

// readAheadIfFreelistAbsent reads the file at path once, front to back,
// if Open is about to rebuild its free-page list, so that the pages are in
// the page cache when the walk visits them.
//
// bbolt maps the file with MADV_RANDOM, so each page the walk touches that
// is not in the cache is one synchronous 4 KiB read: on a 520 MB file not in
// the page cache the walk took 22 s, against 0.6 s after this sequential
// read (posix_fadvise(WILLNEED) gave 15 s: the kernel's read-ahead it starts
// is not the plain streaming read this is). Errors are ignored: this is
// only a hint.
func readAheadIfFreelistAbsent(path string, log *slog.Logger) {
	if saved, ok := freelistSaved(path); !ok || saved {
		return
	}
	log.Info("store was not closed cleanly: rebuilding its free-page list", "path", path)
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(io.Discard, bufio.NewReaderSize(f, 1<<20))
}
