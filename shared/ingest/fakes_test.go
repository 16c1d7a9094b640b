package ingest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/storage"
)

// memStore is an in-memory Routes, Secrets, Deliveries and Queue with
// switches that make its calls fail.
type memStore struct {
	mu        sync.Mutex
	routes    map[string]string
	records   map[string]connection.Record
	secrets   map[string]string
	claims    map[string]time.Time
	noted     map[string]time.Time
	sent      [][]byte
	dedupeIDs []string

	failClaim, failSend, failRelease, failConfirm, failRoute bool
	secretReads, recordReads                                 int
	// now is the claims' clock; nil means time.Now.
	now func() time.Time
}

var (
	_ Routes     = (*memStore)(nil)
	_ Secrets    = (*memStore)(nil)
	_ Deliveries = (*memStore)(nil)
	_ Queue      = (*memStore)(nil)
)

var errDown = errors.New("store is down")

func newMemStore() *memStore {
	return &memStore{
		routes: map[string]string{}, records: map[string]connection.Record{}, secrets: map[string]string{},
		claims: map[string]time.Time{}, noted: map[string]time.Time{},
	}
}

func (m *memStore) WebhookTenant(_ context.Context, id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRoute {
		return "", errors.Join(storage.ErrUnavailable, errDown)
	}
	t, ok := m.routes[id]
	if !ok {
		return "", storage.ErrNotFound
	}
	return t, nil
}

func (m *memStore) GetConnection(_ context.Context, tenant string) (connection.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recordReads++
	r, ok := m.records[tenant]
	if !ok {
		return connection.Record{}, storage.ErrNotFound
	}
	return r, nil
}

func (m *memStore) GetSecret(_ context.Context, name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secretReads++
	v, ok := m.secrets[name]
	if !ok {
		return "", storage.ErrNotFound
	}
	return v, nil
}

func (m *memStore) ClaimDelivery(_ context.Context, tenant, key string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failClaim {
		return errors.Join(storage.ErrUnavailable, errDown)
	}
	k := tenant + "\x00" + key
	now := time.Now
	if m.now != nil {
		now = m.now
	}
	if exp, ok := m.claims[k]; ok && now().Before(exp) {
		return storage.ErrConflict
	}
	m.claims[k] = expires
	return nil
}

func (m *memStore) ConfirmDelivery(_ context.Context, tenant, key string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failConfirm {
		return errors.Join(storage.ErrUnavailable, errDown)
	}
	m.claims[tenant+"\x00"+key] = expires
	return nil
}

func (m *memStore) ReleaseDelivery(_ context.Context, tenant, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRelease {
		return errors.Join(storage.ErrUnavailable, errDown)
	}
	delete(m.claims, tenant+"\x00"+key)
	return nil
}

func (m *memStore) NoteDelivery(_ context.Context, tenant string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if at.After(m.noted[tenant]) {
		m.noted[tenant] = at
	}
	return nil
}

func (m *memStore) Send(_ context.Context, body []byte, dedupeID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSend {
		return errors.Join(storage.ErrUnavailable, errDown)
	}
	m.sent = append(m.sent, bytes.Clone(body))
	m.dedupeIDs = append(m.dedupeIDs, dedupeID)
	return nil
}

func (m *memStore) sentCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

func (m *memStore) claimed(tenant, key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.claims[tenant+"\x00"+key]
	return ok
}

// claimExpiry returns when tenant's claim on key lapses, or the zero time.
func (m *memStore) claimExpiry(tenant, key string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.claims[tenant+"\x00"+key]
}

func (m *memStore) set(f func(m *memStore)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}
