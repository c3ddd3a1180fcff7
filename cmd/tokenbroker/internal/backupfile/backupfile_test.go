package backupfile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

func write(t *testing.T, snapshot []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	// In two writes, as chunks arrive.
	if _, err := w.Write(snapshot[:len(snapshot)/2]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(snapshot[len(snapshot)/2:]); err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(snapshot)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(snapshot))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	snapshot := bytes.Repeat([]byte("bbolt page "), 1000)
	file := write(t, snapshot)
	if len(file) != len(snapshot)+TrailerSize {
		t.Fatalf("file is %d bytes, want %d", len(file), len(snapshot)+TrailerSize)
	}
	var out bytes.Buffer
	info, err := Extract(bytes.NewReader(file), int64(len(file)), &out)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if !bytes.Equal(out.Bytes(), snapshot) {
		t.Fatal("extracted snapshot differs")
	}
	want := sha256.Sum256(snapshot)
	if info.Size != int64(len(snapshot)) || !bytes.Equal(info.SHA256, want[:]) {
		t.Fatalf("info = %d %x, want %d %x", info.Size, info.SHA256, len(snapshot), want)
	}
	// The snapshot is the file minus its trailer (documented: head -c -48).
	if !bytes.Equal(file[:len(file)-TrailerSize], snapshot) {
		t.Fatal("the file does not start with the snapshot")
	}
}

func TestDamage(t *testing.T) {
	snapshot := bytes.Repeat([]byte{7}, 4096)
	good := write(t, snapshot)
	flipped := bytes.Clone(good)
	flipped[100] ^= 1
	badMagic := bytes.Clone(good)
	badMagic[len(badMagic)-TrailerSize] = 'X'
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"a flipped bit in the snapshot", flipped, ErrChecksum},
		{"truncated", good[:len(good)-1], ErrNotBackup},
		{"cut in the snapshot", append(bytes.Clone(good[:1000]), good[len(good)-TrailerSize:]...), ErrNotBackup},
		{"not a backup", snapshot, ErrNotBackup},
		{"empty", nil, ErrNotBackup},
		{"bad magic", badMagic, ErrNotBackup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Extract(bytes.NewReader(tt.file), int64(len(tt.file)), &bytes.Buffer{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Extract = %v, want %v", err, tt.want)
			}
		})
	}
}
