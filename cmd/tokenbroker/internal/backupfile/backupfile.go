// Package backupfile is the format of tokenbroker backup files: the
// database snapshot (a plain bbolt file) followed by a fixed 48-byte
// trailer,
//
//	"TBBACKV1" ‖ snapshot length (8 bytes, big-endian) ‖ SHA-256 of the snapshot (32 bytes)
//
// so a backup is one self-checking file, and `head -c -48` of it is a bbolt
// file any bbolt tool opens. A truncated or altered file fails Extract
// before anything is written where the database lives.
package backupfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// TrailerSize is the length of the trailer.
const TrailerSize = 8 + 8 + sha256.Size

var magic = []byte("TBBACKV1")

// ErrNotBackup: the file has no valid trailer (not a backup, or truncated).
var ErrNotBackup = errors.New("not a tokenbroker backup file, or a truncated one (no valid trailer)")

// ErrChecksum: the snapshot does not match the trailer's SHA-256.
var ErrChecksum = errors.New("checksum mismatch: the backup file is damaged")

// Writer writes a backup: the snapshot through Write, then the trailer
// through Close.
type Writer struct {
	w   io.Writer
	sum hash.Hash
	n   int64
}

// NewWriter returns a Writer onto w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, sum: sha256.New()} }

// Write writes snapshot bytes.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.sum.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Size is the number of snapshot bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Sum is the SHA-256 of the snapshot bytes written so far.
func (w *Writer) Sum() []byte { return w.sum.Sum(nil) }

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	_, err := w.w.Write(trailer(w.n, w.Sum()))
	return err
}

func trailer(n int64, sum []byte) []byte {
	t := make([]byte, 0, TrailerSize)
	t = append(t, magic...)
	t = binary.BigEndian.AppendUint64(t, uint64(n))
	return append(t, sum...)
}

// Info is what a backup's trailer says.
type Info struct {
	Size   int64  // snapshot bytes
	SHA256 []byte // of the snapshot
}

// ReadTrailer reads and checks the trailer of a backup of total length
// size (it does not verify the checksum: Extract does).
func ReadTrailer(r io.ReaderAt, size int64) (Info, error) {
	if size < TrailerSize {
		return Info{}, ErrNotBackup
	}
	t := make([]byte, TrailerSize)
	if _, err := r.ReadAt(t, size-TrailerSize); err != nil {
		return Info{}, fmt.Errorf("read trailer: %w", err)
	}
	if !bytes.Equal(t[:8], magic) {
		return Info{}, ErrNotBackup
	}
	n := binary.BigEndian.Uint64(t[8:16])
	if n != uint64(size-TrailerSize) {
		return Info{}, fmt.Errorf("%w: trailer names %d snapshot bytes, file holds %d", ErrNotBackup, n, size-TrailerSize)
	}
	return Info{Size: int64(n), SHA256: bytes.Clone(t[16:])}, nil
}

// Extract copies the snapshot of the backup in r (total length size) to w
// and verifies it against the trailer. On ErrChecksum, what was copied to
// w must be discarded.
func Extract(r io.ReaderAt, size int64, w io.Writer) (Info, error) {
	info, err := ReadTrailer(r, size)
	if err != nil {
		return Info{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), io.NewSectionReader(r, 0, info.Size)); err != nil {
		return Info{}, fmt.Errorf("copy snapshot: %w", err)
	}
	if !bytes.Equal(h.Sum(nil), info.SHA256) {
		return Info{}, ErrChecksum
	}
	return info, nil
}
