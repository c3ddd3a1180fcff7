package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/server/broker"
	"github.com/tokenbroker/tokenbroker/server/credential"
	"github.com/tokenbroker/tokenbroker/server/keyring"
	"github.com/tokenbroker/tokenbroker/server/policy"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/bolt"
	"github.com/tokenbroker/tokenbroker/store/etcd"
)

// Store backends selectable with Config.Store.
const (
	StoreBolt = "bolt"
	StoreEtcd = "etcd"
)

// EtcdConfig selects and secures the etcd cluster of the etcd backend.
type EtcdConfig struct {
	Endpoints []string // host:port or URLs
	Prefix    string   // key prefix of this installation (default /tokenbroker/)
	// CACert verifies the members' certificates; Cert and Key authenticate
	// the broker to them (all PEM files; TLS is used when any is set).
	CACert, Cert, Key string
	// CallTimeout bounds each etcd request (default 5 s).
	CallTimeout time.Duration
	// StaleAfter bounds how long a replica cut off from etcd keeps
	// answering from its last view before it fails closed (default 5 s).
	StaleAfter time.Duration
	// MaxTxnOps is the most operations one etcd transaction of the store
	// holds (etcd.Options.MaxTxnOps): at most the members' --max-txn-ops,
	// which refuse larger transactions; 0 means etcd's default, 128, also
	// the least accepted.
	MaxTxnOps int
}

// keyFile is where the master key lives: Config.KeyFile, or beside the
// bbolt file as always.
func (c *Config) keyFile() string {
	if c.KeyFile != "" {
		return c.KeyFile
	}
	return keyring.PathFor(c.DataPath)
}

// storeName describes the store in logs and errors.
func (c *Config) storeName() string {
	if c.Store == StoreEtcd {
		return fmt.Sprintf("etcd %s (prefix %s)", strings.Join(c.Etcd.Endpoints, ","), c.etcdPrefix())
	}
	return c.DataPath
}

// etcdMaxTxnOps is the MaxTxnOps the etcd store uses.
func (c *Config) etcdMaxTxnOps() int {
	if c.Etcd.MaxTxnOps == 0 {
		return etcd.DefaultMaxTxnOps
	}
	return c.Etcd.MaxTxnOps
}

func (c *Config) etcdPrefix() string {
	if c.Etcd.Prefix == "" {
		return etcd.DefaultPrefix
	}
	return c.Etcd.Prefix
}

// openStore opens the configured backend. The key file's directory is
// created in either case (by default the key sits beside the bbolt file).
// onCommit, if set, observes either backend's group commits (metrics).
func openStore(ctx context.Context, cfg Config, onCommit func(batch int, took time.Duration)) (store.Store, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.keyFile()), 0o700); err != nil {
		return nil, fmt.Errorf("create key file directory: %w", err)
	}
	switch cfg.Store {
	case "", StoreBolt:
		if err := os.MkdirAll(filepath.Dir(cfg.DataPath), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		s, err := bolt.Open(cfg.DataPath, bolt.Options{Logger: cfg.Logger, OnCommit: onCommit})
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", cfg.DataPath, err)
		}
		return s, nil
	case StoreEtcd:
		tlsCfg, err := etcdTLS(cfg.Etcd)
		if err != nil {
			return nil, err
		}
		s, err := etcd.Open(ctx, etcd.Options{
			Endpoints: cfg.Etcd.Endpoints, TLS: tlsCfg, Prefix: cfg.Etcd.Prefix,
			CallTimeout: cfg.Etcd.CallTimeout, StaleAfter: cfg.Etcd.StaleAfter, MaxTxnOps: cfg.Etcd.MaxTxnOps,
			Logger: cfg.Logger, OnCommit: onCommit,
		})
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", cfg.storeName(), err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown store %q (want %q or %q)", cfg.Store, StoreBolt, StoreEtcd)
}

func etcdTLS(c EtcdConfig) (*tls.Config, error) {
	if c.CACert == "" && c.Cert == "" && c.Key == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcd CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA certificate %s: no PEM certificate in it", c.CACert)
		}
		t.RootCAs = pool
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("etcd client certificate and key must be given together")
	}
	if c.Cert != "" {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}

// setupStore runs broker.Setup again while another broker sharing the
// store bootstraps it (or creates a default role) at the same moment: the
// store's guarded writes let exactly one win each record, and the loser
// then finds the record and goes on, ending by finding the organization and
// checking its key against it like any later start. Every lost race means
// the other broker created one of the setup's records (the default roles
// and the organization), so setupAttempts bounds the retries. A bootstrap
// file the loser wrote holds a credential that was never stored, so it is
// removed.
// setupAttempts: one per record a concurrent setup may win (the default
// roles and the organization), plus the final one.
var setupAttempts = len(policy.DefaultRoles("")) + 2

func setupStore(ctx context.Context, cfg Config, st store.Store, keys *keyring.Keyring, mac *credential.MAC) (broker.SetupResult, error) {
	before, statErr := os.Stat(cfg.BootstrapFile)
	for attempt := 0; ; attempt++ {
		setup, err := broker.Setup(ctx, st, keys, mac, cfg.OrgName, cfg.BootstrapFile, cfg.Now())
		if err == nil || attempt == setupAttempts-1 || !errors.Is(err, store.ErrAlreadyExists) {
			if err != nil {
				return setup, fmt.Errorf("%s: %w", cfg.storeName(), err)
			}
			return setup, nil
		}
		if cfg.BootstrapFile != "" {
			if now, err := os.Stat(cfg.BootstrapFile); err == nil && (statErr != nil || !now.ModTime().Equal(before.ModTime())) {
				_ = os.Remove(cfg.BootstrapFile)
			}
		}
		cfg.Logger.Info("another broker set up the store at the same time; reading its setup", "err", err)
	}
}

// OpenStore opens the store cfg selects (Store, DataPath or Etcd), as Start
// does, for the maintenance commands that work on the store directly
// (admin recover). The caller closes it.
func OpenStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return openStore(ctx, cfg, nil)
}
