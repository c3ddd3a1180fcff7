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
	return checkKeyFile(keyring.PathFor(dataPath), org, what)
}

// checkKeyFile is checkKey for a key file at keyPath (--key-file).
func checkKeyFile(keyPath string, org store.Organization, what string) (*keyring.Keyring, error) {
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
	return group("admin", "Break-glass operations on the store (bbolt: broker stopped)",
		`  tokenbroker admin recover --data /var/lib/tokenbroker/tokenbroker.db
  tokenbroker admin recover --store etcd --etcd-endpoints etcd-1:2379 --key-file /etc/tokenbroker/tokenbroker.key`,
		a.adminRecoverCommand())
}

// recoverTarget is where admin recover mints its token: the bbolt file (and
// its <data>.key), or an etcd prefix and the installation's key file.
type recoverTarget struct {
	store, data, keyFile string
	etcd                 server.EtcdConfig
}

func (a *app) adminRecoverCommand() *cobra.Command {
	var (
		target      recoverTarget
		endpoints   string
		description string
	)
	c := &cobra.Command{
		Use:   "recover --data PATH | --store etcd --etcd-endpoints LIST --key-file PATH",
		Short: "Mint a new Organization Administrator token in the store (when no admin token is left)",
		Long: `Break-glass recovery: mint a new Organization Administrator token directly
in the store, for when every admin token is lost or deleted.

On bbolt (the default) it needs the data file and its key file
(<PATH>.key, or --key-file), and refuses while a broker holds the file:
stop the broker, run this, start the broker again.

On etcd (--store etcd, with the same --etcd-* flags and --key-file as the
brokers) the brokers may keep running: the token is written in one guarded
etcd transaction (it fails rather than overwrite anything), and every broker
sees it within moments through its watch. The key file must be the
installation's: it is checked against the organization first.

The token is printed once (with a warning on stderr), stored only as a
keyed hash like every token, and the recovery is recorded in the audit log
(action Admin.Recover, actor "operator:<os user>@<host>").`,
		Example: `  systemctl stop tokenbroker
  tokenbroker admin recover --data /var/lib/tokenbroker/tokenbroker.db
  systemctl start tokenbroker

  tokenbroker admin recover --store etcd --etcd-endpoints https://etcd-1:2379 \
    --etcd-cacert ca.pem --etcd-cert client.pem --etcd-key client-key.pem \
    --key-file /etc/tokenbroker/tokenbroker.key`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			if endpoints != "" {
				target.etcd.Endpoints = strings.Split(endpoints, ",")
			}
			return a.recoverAdmin(ctx, target, description)
		}),
	}
	a.dataFlag(c, &target.data)
	f := c.Flags()
	f.StringVar(&target.store, "store", a.envOr("TOKENBROKER_STORE", server.StoreBolt), "store backend: bolt (the --data file) or etcd (env TOKENBROKER_STORE)")
	f.StringVar(&target.keyFile, "key-file", a.envOr("TOKENBROKER_KEY_FILE", ""), "the installation's key file (default <data>.key; required with --store etcd; env TOKENBROKER_KEY_FILE)")
	f.StringVar(&endpoints, "etcd-endpoints", a.envOr("TOKENBROKER_ETCD_ENDPOINTS", ""), "etcd client endpoints, comma-separated (env TOKENBROKER_ETCD_ENDPOINTS)")
	f.StringVar(&target.etcd.Prefix, "etcd-prefix", a.envOr("TOKENBROKER_ETCD_PREFIX", "/tokenbroker/"), "etcd key prefix of the installation (env TOKENBROKER_ETCD_PREFIX)")
	f.StringVar(&target.etcd.CACert, "etcd-cacert", a.envOr("TOKENBROKER_ETCD_CACERT", ""), "PEM CA certificate verifying the etcd members")
	f.StringVar(&target.etcd.Cert, "etcd-cert", a.envOr("TOKENBROKER_ETCD_CERT", ""), "PEM client certificate for etcd")
	f.StringVar(&target.etcd.Key, "etcd-key", a.envOr("TOKENBROKER_ETCD_KEY", ""), "PEM client key for etcd")
	c.Flags().StringVarP(&description, "description", "d", "break-glass Organization Administrator token (tokenbroker admin recover)", "the new token's description")
	return c
}

// openRecoverStore opens the store admin recover writes to and says where
// its key file is and how to name the store in messages.
func (a *app) openRecoverStore(ctx context.Context, tg recoverTarget) (st store.Store, keyFile, name string, err error) {
	switch tg.store {
	case "", server.StoreBolt:
		data := tg.data
		if data == "" {
			return nil, "", "", usagef("--data must not be empty")
		}
		if _, err := os.Stat(data); errors.Is(err, fs.ErrNotExist) {
			return nil, "", "", fmt.Errorf("no data file at %s (a fresh broker creates its first admin token at its first start)", data)
		} else if err != nil {
			return nil, "", "", err
		}
		b, err := bolt.Open(data, bolt.Options{LockTimeout: lockWait, Logger: slog.New(slog.DiscardHandler)})
		if errors.Is(err, bolt.ErrLocked) {
			return nil, "", "", errBrokerRunning(data)
		}
		if err != nil {
			return nil, "", "", err
		}
		keyFile = tg.keyFile
		if keyFile == "" {
			keyFile = keyring.PathFor(data)
		}
		return b, keyFile, data, nil
	case server.StoreEtcd:
		if len(tg.etcd.Endpoints) == 0 {
			return nil, "", "", usagef("--store etcd needs --etcd-endpoints")
		}
		if tg.keyFile == "" {
			return nil, "", "", usagef("--store etcd needs --key-file: the installation's key file, as the brokers have it")
		}
		name = fmt.Sprintf("etcd prefix %s", tg.etcd.Prefix)
		// Opening never creates the key file; only its directory must exist.
		if _, err := os.Stat(tg.keyFile); err != nil {
			return nil, "", "", fmt.Errorf("refused: key file %s: %w. Recovery needs the installation's key file (the one the brokers use)", tg.keyFile, err)
		}
		e, err := server.OpenStore(ctx, server.Config{Store: server.StoreEtcd, Etcd: tg.etcd, KeyFile: tg.keyFile})
		if err != nil {
			return nil, "", "", err
		}
		return e, tg.keyFile, name, nil
	}
	return nil, "", "", usagef("--store %q: want %q or %q", tg.store, server.StoreBolt, server.StoreEtcd)
}

func (a *app) recoverAdmin(ctx context.Context, tg recoverTarget, description string) error {
	st, keyFile, name, err := a.openRecoverStore(ctx, tg)
	if err != nil {
		return err
	}
	defer st.Close()
	org, err := st.GetOrganization(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s holds no organization: start the broker once, which creates the first admin token", name)
	}
	if err != nil {
		return err
	}
	keys, err := checkKeyFile(keyFile, org, "recovery")
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
	if tg.store == server.StoreEtcd {
		ev.Detail = "break-glass recovery: Organization Administrator token minted directly in etcd"
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
