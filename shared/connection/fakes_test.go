package connection

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/storage"
)

// memRecords is an in-memory Records with failure injection.
type memRecords struct {
	mu      sync.Mutex
	recs    map[string]Record
	routes  map[string]string
	leases  map[string]memLease
	failPut error
	failGet error
	// failRoute fails PutWebhookRoute.
	failRoute error
}

type memLease struct {
	holder string
	until  time.Time
}

var _ Records = (*memRecords)(nil)

func newMemRecords() *memRecords {
	return &memRecords{recs: map[string]Record{}, routes: map[string]string{}, leases: map[string]memLease{}}
}

func (m *memRecords) TakeLease(_ context.Context, tenant, holder string, now, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.leases[tenant]; ok && l.holder != holder && now.Before(l.until) {
		return storage.ErrConflict
	}
	m.leases[tenant] = memLease{holder: holder, until: until}
	return nil
}

func (m *memRecords) ReleaseLease(_ context.Context, tenant, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases[tenant].holder == holder {
		delete(m.leases, tenant)
	}
	return nil
}

func (m *memRecords) GetConnection(_ context.Context, tenant string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failGet != nil {
		return Record{}, m.failGet
	}
	rec, ok := m.recs[tenant]
	if !ok {
		return Record{}, storage.ErrNotFound
	}
	return rec, nil
}

func (m *memRecords) PutConnection(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPut != nil {
		return m.failPut
	}
	if rec.Webhook != nil && rec.Webhook.Secret != "" {
		return fmt.Errorf("put connection: webhook secret must not be stored")
	}
	if m.recs[rec.Tenant].Version != rec.Version {
		return storage.ErrConflict
	}
	rec.Version++
	m.recs[rec.Tenant] = rec
	return nil
}

func (m *memRecords) PutWebhookRoute(_ context.Context, id, tenant string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRoute != nil {
		return m.failRoute
	}
	if t, ok := m.routes[id]; ok && t != tenant {
		return storage.ErrConflict
	}
	m.routes[id] = tenant
	return nil
}

func (m *memRecords) WebhookTenant(_ context.Context, id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.routes[id]
	if !ok {
		return "", storage.ErrNotFound
	}
	return t, nil
}

func (m *memRecords) DeleteWebhookRoute(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.routes, id)
	return nil
}

// memSecrets is an in-memory Secrets with failure injection.
type memSecrets struct {
	mu      sync.Mutex
	values  map[string]string
	failPut error
	// failPuts fails that many puts with failPut, then lets them through
	// (0: every put fails while failPut is set).
	failPuts int
	// landed makes a failing put store its value anyway, as a put whose
	// answer was lost would.
	landed bool
}

var _ Secrets = (*memSecrets)(nil)

func newMemSecrets() *memSecrets { return &memSecrets{values: map[string]string{}} }

func (m *memSecrets) PutSecret(_ context.Context, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPut != nil {
		err := m.failPut
		if m.failPuts > 0 {
			m.failPuts--
			if m.failPuts == 0 {
				m.failPut = nil
			}
		}
		if m.landed {
			m.values[name] = value
		}
		return err
	}
	m.values[name] = value
	return nil
}

func (m *memSecrets) GetSecret(_ context.Context, name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[name]
	if !ok {
		return "", storage.ErrNotFound
	}
	return v, nil
}

func (m *memSecrets) DeleteSecret(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.values, name)
	return nil
}

// fakeBuildkite answers per token.
type fakeBuildkite struct {
	tokens map[string]fakeToken
}

type fakeToken struct {
	info    buildkite.AccessToken
	orgs    []buildkite.Organization
	err     error // from AccessToken
	orgsErr error
}

type fakeClient struct{ t fakeToken }

func (f *fakeBuildkite) client(token string) Buildkite {
	t, ok := f.tokens[token]
	if !ok {
		t = fakeToken{err: &buildkite.APIError{StatusCode: 401, Message: "Authentication required"}}
	}
	return fakeClient{t}
}

func (c fakeClient) AccessToken(context.Context) (buildkite.AccessToken, error) {
	return c.t.info, c.t.err
}

func (c fakeClient) Organizations(context.Context) ([]buildkite.Organization, error) {
	return c.t.orgs, c.t.orgsErr
}
