// Package localstore is the embedded storage of `kitefix serve`: status
// records, webhook routes and sealed secrets in one bbolt file,
// <dir>/kitefix.db.
//
// Secrets are sealed with AES-256-GCM under a 32-byte key kept in
// <dir>/secret.key (mode 0600). Each value gets a random 12-byte nonce and
// is bound to its name as additional data, so a sealed value moved to
// another name does not open.
package localstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/storage"
)

// File names inside the data directory.
const (
	DBFile  = "kitefix.db"
	KeyFile = "secret.key"
)

var (
	bucketConnections = []byte("connections")
	bucketRoutes      = []byte("webhook_routes")
	bucketSecrets     = []byte("secrets")
)

// Store implements connection.Records and connection.Secrets on a local
// bbolt file. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	aead sealer

	// Leases live in memory: bbolt locks the file, so this process is the
	// only one that can change the store, and a lease does not need to
	// outlive it.
	leaseMu sync.Mutex
	leases  map[string]lease
}

// lease is a tenant's lease: who holds it, until when.
type lease struct {
	holder string
	until  time.Time
}

var (
	_ connection.Records = (*Store)(nil)
	_ connection.Secrets = (*Store)(nil)
)

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close local store: %w", err)
	}
	return nil
}

// storedRecord is a status record as stored: the API shape (the webhook
// secret cleared) plus the fields the API shape leaves out.
type storedRecord struct {
	Record    connection.Record `json:"record"`
	Tenant    string            `json:"tenant"`
	Version   int64             `json:"version"`
	UpdatedAt time.Time         `json:"updated_at"`
	WebhookID string            `json:"webhook_id,omitempty"`
}

// GetConnection returns the tenant's record, or storage.ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, tenant string) (connection.Record, error) {
	if err := ctx.Err(); err != nil {
		return connection.Record{}, fmt.Errorf("get connection: %w: %w", storage.ErrUnavailable, err)
	}
	var rec connection.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketConnections).Get([]byte(tenant))
		if v == nil {
			return storage.ErrNotFound
		}
		var err error
		rec, err = decodeRecord(tenant, v)
		return err
	})
	if err != nil {
		return connection.Record{}, wrap("get connection", err)
	}
	return rec, nil
}

// PutConnection writes rec if the stored version equals rec.Version (0: no
// record yet) and stores version rec.Version+1; otherwise it returns
// storage.ErrConflict. Webhook.Secret is never written.
func (s *Store) PutConnection(ctx context.Context, rec connection.Record) error {
	if rec.Tenant == "" {
		return errors.New("put connection: empty tenant")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put connection: %w: %w", storage.ErrUnavailable, err)
	}
	sr := storedRecord{
		Record:    rec,
		Tenant:    rec.Tenant,
		Version:   rec.Version + 1,
		UpdatedAt: rec.UpdatedAt,
	}
	if rec.Webhook != nil {
		// A copy: the caller's Webhook keeps its secret.
		sr.Record.Webhook = &connection.Webhook{URL: rec.Webhook.URL}
		sr.WebhookID = rec.Webhook.ID
	}
	v, err := json.Marshal(sr)
	if err != nil {
		return fmt.Errorf("put connection: encode record: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketConnections)
		stored := b.Get([]byte(rec.Tenant))
		switch {
		case stored == nil && rec.Version != 0:
			return storage.ErrConflict
		case stored != nil:
			var cur struct {
				Version int64 `json:"version"`
			}
			if err := json.Unmarshal(stored, &cur); err != nil {
				return fmt.Errorf("decode stored record: %w", err)
			}
			if cur.Version != rec.Version {
				return storage.ErrConflict
			}
		}
		return b.Put([]byte(rec.Tenant), v)
	})
	if err != nil {
		return wrap("put connection", err)
	}
	return nil
}

// PutWebhookRoute maps webhookID to tenant. Putting the same mapping again
// is fine; mapping an id that belongs to another tenant returns
// storage.ErrConflict.
func (s *Store) PutWebhookRoute(ctx context.Context, webhookID, tenant string) error {
	if webhookID == "" || tenant == "" {
		return errors.New("put webhook route: empty webhook id or tenant")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put webhook route: %w: %w", storage.ErrUnavailable, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRoutes)
		if cur := b.Get([]byte(webhookID)); cur != nil && string(cur) != tenant {
			return storage.ErrConflict
		}
		return b.Put([]byte(webhookID), []byte(tenant))
	})
	if err != nil {
		return wrap("put webhook route", err)
	}
	return nil
}

// WebhookTenant returns the tenant of webhookID, or storage.ErrNotFound.
func (s *Store) WebhookTenant(ctx context.Context, webhookID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("get webhook route: %w: %w", storage.ErrUnavailable, err)
	}
	var tenant string
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRoutes).Get([]byte(webhookID))
		if v == nil {
			return storage.ErrNotFound
		}
		tenant = string(v)
		return nil
	})
	if err != nil {
		return "", wrap("get webhook route", err)
	}
	return tenant, nil
}

// DeleteWebhookRoute removes the route of webhookID; a missing one is fine.
func (s *Store) DeleteWebhookRoute(ctx context.Context, webhookID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete webhook route: %w: %w", storage.ErrUnavailable, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoutes).Delete([]byte(webhookID))
	})
	if err != nil {
		return wrap("delete webhook route", err)
	}
	return nil
}

// TakeLease makes holder the owner of tenant's lease until until, when it
// is free, expired at now, or holder's already; otherwise it returns
// storage.ErrConflict.
func (s *Store) TakeLease(ctx context.Context, tenant, holder string, now, until time.Time) error {
	if tenant == "" || holder == "" {
		return errors.New("take lease: empty tenant or holder")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("take lease: %w: %w", storage.ErrUnavailable, err)
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if l, ok := s.leases[tenant]; ok && l.holder != holder && now.Before(l.until) {
		return fmt.Errorf("take lease: %w", storage.ErrConflict)
	}
	if s.leases == nil {
		s.leases = map[string]lease{}
	}
	s.leases[tenant] = lease{holder: holder, until: until}
	return nil
}

// ReleaseLease frees tenant's lease if holder owns it.
func (s *Store) ReleaseLease(_ context.Context, tenant, holder string) error {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if l, ok := s.leases[tenant]; ok && l.holder == holder {
		delete(s.leases, tenant)
	}
	return nil
}

// PutSecret seals value under name and stores it, replacing any old value.
func (s *Store) PutSecret(ctx context.Context, name, value string) error {
	if name == "" {
		return errors.New("put secret: empty name")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put secret %s: %w: %w", name, storage.ErrUnavailable, err)
	}
	sealed, err := s.aead.seal(name, []byte(value))
	if err != nil {
		return fmt.Errorf("put secret %s: %w", name, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSecrets).Put([]byte(name), sealed)
	})
	if err != nil {
		return fmt.Errorf("put secret %s: %w", name, wrap("store", err))
	}
	return nil
}

// GetSecret returns the value of name, or storage.ErrNotFound. A sealed
// value that does not open (tampered with, or sealed under another key or
// name) is an error wrapping storage.ErrUnavailable.
func (s *Store) GetSecret(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("get secret %s: %w: %w", name, storage.ErrUnavailable, err)
	}
	var sealed []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSecrets).Get([]byte(name))
		if v == nil {
			return storage.ErrNotFound
		}
		sealed = append([]byte(nil), v...)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("get secret %s: %w", name, wrap("load", err))
	}
	value, err := s.aead.open(name, sealed)
	if err != nil {
		return "", fmt.Errorf("get secret %s: %w: %w", name, storage.ErrUnavailable, err)
	}
	return string(value), nil
}

// DeleteSecret removes name; a missing one is fine.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete secret %s: %w: %w", name, storage.ErrUnavailable, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSecrets).Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", name, wrap("store", err))
	}
	return nil
}

// wrap passes storage.ErrNotFound and storage.ErrConflict through and marks
// anything else (a closed or broken database) as storage.ErrUnavailable.
func wrap(op string, err error) error {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, storage.ErrUnavailable, err)
}
