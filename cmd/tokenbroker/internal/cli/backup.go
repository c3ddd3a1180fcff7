package cli

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/cmd/tokenbroker/internal/backupfile"
	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

func (a *app) backupCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "backup OUT",
		Short: "Write an online, consistent backup of the broker's database to OUT",
		Long: `Write a consistent snapshot of the running broker's database to the file
OUT, while the broker keeps serving. Every write the broker acknowledged
before the backup began is in it. Needs the org-write permission (the
Organization Administrator role); the backup is recorded in the audit log.

The file is the bbolt database followed by a 48-byte trailer holding its
length and SHA-256, which restore verifies. It is written to a temporary
file beside OUT and renamed into place once complete (mode 0600).

The key file (<data>.key) is NOT in the backup: back it up separately,
and keep the two apart. The backup holds only keyed hashes of tokens;
without the key it can neither be restored nor verify any token.`,
		Example: `  tokenbroker backup /var/backups/tokenbroker-$(date -u +%Y%m%dT%H%M%SZ).tbbak
  tokenbroker backup --server broker.internal:50051 --cacert ca.pem nightly.tbbak --force`,
		Args: exactArgs("OUT"),
		RunE: a.run(func(ctx context.Context, args []string) error {
			out := args[0]
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("%s exists: give --force to replace it", out)
			}
			c, err := a.clients()
			if err != nil {
				return err
			}
			sctx, err := a.stream(ctx)
			if err != nil {
				return err
			}
			sctx, cancel := context.WithCancel(sctx)
			defer cancel()
			stream, err := c.admin.Backup(sctx, &tbv1.BackupRequest{})
			if err != nil {
				return err
			}
			first, err := stream.Recv()
			if err != nil {
				return err
			}
			header := first.GetHeader()
			if header == nil {
				return errors.New("the broker's backup stream did not start with a header")
			}
			info, err := writeAtomic(out, func(w io.Writer) (backupfile.Info, error) {
				return receiveBackup(stream, w)
			})
			if err != nil {
				return err
			}
			sum := hex.EncodeToString(info.SHA256)
			if a.json() {
				return a.printJSON(map[string]any{
					"path": out, "size": info.Size, "sha256": sum, "orgId": header.GetOrgId(),
					"format": header.GetFormat(), "startedAt": ts(header.GetStartedAt()),
				})
			}
			a.note("tokenbroker: backup written; the key file is not in it: back it up separately")
			return a.fields("path", out, "size", fmt.Sprint(info.Size), "sha256", sum, "orgId", header.GetOrgId(),
				"format", header.GetFormat(), "startedAt", ts(header.GetStartedAt()))
		}),
	}
	c.Flags().BoolVar(&force, "force", false, "replace OUT if it exists")
	return c
}

// receiveBackup writes the stream's chunks as a backup file onto w and
// checks them against the broker's trailer.
func receiveBackup(stream interface {
	Recv() (*tbv1.BackupResponse, error)
}, w io.Writer) (backupfile.Info, error) {
	bw := backupfile.NewWriter(w)
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return backupfile.Info{}, errors.New("the backup stream ended before its trailer: the backup is incomplete")
		}
		if err != nil {
			return backupfile.Info{}, err
		}
		switch p := msg.GetPart().(type) {
		case *tbv1.BackupResponse_Chunk:
			if _, err := bw.Write(p.Chunk); err != nil {
				return backupfile.Info{}, fmt.Errorf("write backup: %w", err)
			}
		case *tbv1.BackupResponse_Trailer:
			if p.Trailer.GetSize() != bw.Size() || !hmac.Equal(p.Trailer.GetSha256(), bw.Sum()) {
				return backupfile.Info{}, fmt.Errorf("the backup received (%d bytes) does not match the broker's checksum (%d bytes): not written", bw.Size(), p.Trailer.GetSize())
			}
			if err := bw.Close(); err != nil {
				return backupfile.Info{}, fmt.Errorf("write backup: %w", err)
			}
			return backupfile.Info{Size: bw.Size(), SHA256: bw.Sum()}, nil
		default:
			return backupfile.Info{}, errors.New("unexpected message in the backup stream")
		}
	}
}

// writeAtomic writes a file through fill into a temporary file beside
// path (mode 0600), fsyncs it and renames it into place, so path is either
// complete or untouched.
func writeAtomic[T any](path string, fill func(io.Writer) (T, error)) (T, error) {
	var zero T
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return zero, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, a no-op
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return zero, err
	}
	v, err := fill(f)
	if err != nil {
		f.Close()
		return zero, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return zero, err
	}
	if err := f.Close(); err != nil {
		return zero, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return zero, err
	}
	syncDir(dir)
	return v, nil
}

// syncDir makes a rename in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
