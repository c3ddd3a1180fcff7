package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tokenbroker/tokenbroker/cmd/tokenbroker/internal/backupfile"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/keyring"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
)

// lockWait is how long the offline commands wait for the data file's lock
// before concluding that a broker holds it.
const lockWait = time.Second

// dataFlag adds --data, defaulting like serve's (TOKENBROKER_DATA, then
// data/tokenbroker.db).
func (a *app) dataFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "data", a.envOr("TOKENBROKER_DATA", server.DefaultDataPath),
		"the broker's bbolt file; its key file is <data>.key (env TOKENBROKER_DATA)")
}

// errBrokerRunning names the data file a running broker holds.
func errBrokerRunning(path string) error {
	return fmt.Errorf("refused: a broker is running on %s (it holds the file's lock); stop it first", path)
}

// heldByBroker reports whether another process (a broker) holds the bbolt
// lock of the existing file path. A file bbolt cannot open for another
// reason (damaged, not bbolt) is not held.
func heldByBroker(path string) bool {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockWait})
	if errors.Is(err, berrors.ErrTimeout) {
		return true
	}
	if err == nil {
		_ = db.Close()
	}
	return false
}

// checkKey loads the key file beside dataPath and verifies that it belongs
// to org, whose KeyCheck is a MAC under that key.
func checkKey(dataPath string, org store.Organization, what string) (*keyring.Keyring, error) {
	keyPath := keyring.PathFor(dataPath)
	keys, _, err := keyring.Load(keyPath, false, nil)
	if errors.Is(err, keyring.ErrNoKeyFile) {
		return nil, fmt.Errorf("refused: key file %s not found. %s needs the key file of organization %s: put the key file that belongs to this database (backed up separately) at %s first", keyPath, what, org.ID, keyPath)
	}
	if err != nil {
		return nil, err
	}
	if !keys.Matches(org.KeyCheck) {
		return nil, fmt.Errorf("refused: the key file %s does not belong to this database (organization %s): with it no stored token could be verified. Put the key file that was backed up with this database at %s; nothing was changed", keyPath, org.ID, keyPath)
	}
	return keys, nil
}

func (a *app) restoreCommand() *cobra.Command {
	var (
		data   string
		dryRun bool
	)
	c := &cobra.Command{
		Use:   "restore --data PATH BACKUP",
		Short: "Replace the data file with a verified backup (broker stopped)",
		Long: `Restore a backup written by 'tokenbroker backup' as the data file PATH.
The broker must be stopped: restore refuses while a process holds PATH.

Before anything is replaced, restore checks the backup's length and
SHA-256, that it is a tokenbroker database this binary can read, and that
the key file <PATH>.key belongs to it (the key file is not in the backup:
put it in place first). A restore whose data does not match the key file
is refused. The snapshot is written to a temporary file beside PATH and
renamed into place; an existing PATH is kept as PATH.replaced-<time>.

--dry-run runs every check and changes nothing: a way to test backups.`,
		Example: `  tokenbroker restore --data /var/lib/tokenbroker/tokenbroker.db nightly.tbbak
  tokenbroker restore --data data/tokenbroker.db --dry-run nightly.tbbak`,
		Args: exactArgs("BACKUP"),
		RunE: a.run(func(_ context.Context, args []string) error {
			return a.restore(data, args[0], dryRun)
		}),
	}
	a.dataFlag(c, &data)
	c.Flags().BoolVar(&dryRun, "dry-run", false, "verify the backup and the key file, change nothing")
	return c
}

func (a *app) restore(data, in string, dryRun bool) (err error) {
	if data == "" {
		return usagef("--data must not be empty")
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	_, statErr := os.Stat(data)
	exists := statErr == nil
	if exists && heldByBroker(data) {
		return errBrokerRunning(data)
	}
	dir := filepath.Dir(data)
	if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		// A refused (or dry) restore leaves no trace, not even the directory.
		defer func() {
			if err != nil || dryRun {
				_ = os.Remove(dir) // only if empty
			}
		}()
	}

	// Extract into a temporary file beside the target, verifying on the way.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(data)+".restore-*")
	if err != nil {
		return err
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // after the rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	info, err := backupfile.Extract(f, fi.Size(), tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was changed", in, err)
	}

	// The snapshot must be a tokenbroker database (this opens it as the
	// broker would, schema check included) whose key file is in place.
	org, err := readOrg(tmpPath)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was changed", in, err)
	}
	if _, err := checkKey(data, org, "restoring it"); err != nil {
		return err
	}
	if dryRun {
		a.note("tokenbroker: dry run: the backup is sound and matches the key file; nothing was changed")
		return a.restoreReport(data, "", org, info, true)
	}

	if exists && heldByBroker(data) { // a broker may have started meanwhile
		return errBrokerRunning(data)
	}
	kept := ""
	if exists {
		kept = data + ".replaced-" + a.env.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(data, kept); err != nil {
			return fmt.Errorf("keep the current data file: %w; nothing was changed", err)
		}
	}
	if err := os.Rename(tmpPath, data); err != nil {
		if kept != "" {
			_ = os.Rename(kept, data)
		}
		return fmt.Errorf("put the restored file in place: %w", err)
	}
	syncDir(dir)
	return a.restoreReport(data, kept, org, info, false)
}

func (a *app) restoreReport(data, kept string, org store.Organization, info backupfile.Info, dryRun bool) error {
	sum := hex.EncodeToString(info.SHA256)
	if a.json() {
		return a.printJSON(map[string]any{
			"data": data, "replacedKeptAs": kept, "orgId": org.ID, "orgName": org.Name,
			"size": info.Size, "sha256": sum, "dryRun": dryRun,
		})
	}
	kv := []string{"data", data, "orgId", org.ID, "orgName", org.Name, "size", fmt.Sprint(info.Size), "sha256", sum}
	if kept != "" {
		kv = append(kv, "previousKeptAs", kept)
	}
	if dryRun {
		kv = append(kv, "dryRun", "true")
	}
	return a.fields(kv...)
}

// readOrg opens the database at path as the broker does and returns its
// organization.
func readOrg(path string) (store.Organization, error) {
	st, err := bolt.Open(path, bolt.Options{LockTimeout: lockWait})
	if err != nil {
		return store.Organization{}, err
	}
	defer st.Close()
	org, err := st.GetOrganization(context.Background())
	if errors.Is(err, store.ErrNotFound) {
		return store.Organization{}, errors.New("it holds no organization (a database from before its first start?)")
	}
	return org, err
}

func (a *app) adminCommand() *cobra.Command {
	return group("admin", "Break-glass operations on the data file (broker stopped)",
		`  tokenbroker admin recover --data /var/lib/tokenbroker/tokenbroker.db`,
		a.adminRecoverCommand())
}

func (a *app) adminRecoverCommand() *cobra.Command {
	var (
		data        string
		description string
	)
	c := &cobra.Command{
		Use:   "recover --data PATH",
		Short: "Mint a new Organization Administrator token offline (when no admin token is left)",
		Long: `Break-glass recovery: mint a new Organization Administrator token directly
in the data file, for when every admin token is lost or deleted. Needs the
data file and its key file (<PATH>.key), and refuses while a broker holds
the file: stop the broker, run this, start the broker again.

The token is printed once (with a warning on stderr), stored only as a
keyed hash like every token, and the recovery is recorded in the audit log
(action Admin.Recover, actor "operator:<os user>@<host>").`,
		Example: `  systemctl stop tokenbroker
  tokenbroker admin recover --data /var/lib/tokenbroker/tokenbroker.db
  systemctl start tokenbroker`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.recoverAdmin(ctx, data, description)
		}),
	}
	a.dataFlag(c, &data)
	c.Flags().StringVarP(&description, "description", "d", "break-glass Organization Administrator token (tokenbroker admin recover)", "the new token's description")
	return c
}

func (a *app) recoverAdmin(ctx context.Context, data, description string) error {
	if data == "" {
		return usagef("--data must not be empty")
	}
	if _, err := os.Stat(data); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no data file at %s (a fresh broker creates its first admin token at its first start)", data)
	} else if err != nil {
		return err
	}
	st, err := bolt.Open(data, bolt.Options{LockTimeout: lockWait, Logger: slog.New(slog.DiscardHandler)})
	if errors.Is(err, bolt.ErrLocked) {
		return errBrokerRunning(data)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	org, err := st.GetOrganization(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s holds no organization: start the broker once, which creates the first admin token", data)
	}
	if err != nil {
		return err
	}
	keys, err := checkKey(data, org, "recovery")
	if err != nil {
		return err
	}
	mac, err := credential.NewMAC(keys.Derive(keyring.PurposeTokenMAC))
	if err != nil {
		return err
	}
	cred, err := credential.New()
	if err != nil {
		return err
	}
	now := a.env.Now().UTC()
	t := store.Token{
		ClientID: cred.ClientID, OrgID: org.ID,
		Roles:       []string{policy.OrganizationAdministratorID},
		Description: description,
		SecretMAC:   mac.Sum(cred.Token),
		GeneratedOn: now,
	}
	// Recorded in the same transaction as the token (store.WithAudit).
	ev := &store.AuditEvent{
		Time: now, ActorKind: "operator", ActorID: operator(),
		Action: "Admin.Recover", TargetKind: "token", TargetID: t.ClientID, Outcome: broker.AuditSuccess,
		Detail: "break-glass recovery: Organization Administrator token minted offline",
	}
	if err := st.CreateToken(store.WithAudit(ctx, ev), t); err != nil {
		return fmt.Errorf("create the token: %w", err)
	}
	out := broker.BootstrapCredential{
		ClientID: cred.ClientID, Secret: cred.Secret, Token: cred.Token,
		OrgID: org.ID, Roles: t.Roles, GeneratedOn: now,
	}
	a.warnSecret("the new Organization Administrator token")
	if a.json() {
		return a.printJSON(out)
	}
	return a.fields("clientId", out.ClientID, "secret", out.Secret, "token", out.Token, "orgId", out.OrgID,
		"roles", strings.Join(out.Roles, "\n"), "generatedOn", now.Format(time.RFC3339))
}

// operator names who ran an offline command, for the audit log: the OS
// user and host, as far as they are known.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}
