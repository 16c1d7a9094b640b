// Package conntest is the behaviour every connection.Records and
// connection.Secrets implementation shares, as a suite the adapters' tests
// run against their own store (the local store, DynamoDB, Secrets Manager).
package conntest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/storage"
)

// unique returns prefix with a random suffix, so suites that share one
// store (one table) do not see each other's items.
func unique(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// FullRecord is a record with every field set, for tenant. Webhook.Secret
// is set too: stores must not keep it.
func FullRecord(tenant string) connection.Record {
	at := time.Date(2025, 7, 23, 6, 7, 42, 0, time.UTC)
	expires := at.Add(90 * 24 * time.Hour)
	verified := at.Add(time.Minute)
	return connection.Record{
		State: connection.StateConnected,
		Token: &connection.TokenInfo{
			UUID:        "b0db3ec4-2ac6-4d3d-8bc4-3c2c1f5e8f10",
			Description: "kitefix",
			Scopes:      []string{"read_builds", "read_build_logs", "write_builds"},
			CreatedAt:   at,
			ExpiresAt:   &expires,
			User:        connection.User{Name: "Ada", Email: "ada@example.com"},
		},
		Organizations:         []connection.Organization{{Slug: "acme", Name: "Acme"}, {Slug: "umbrella", Name: "Umbrella"}},
		MissingScopes:         []string{},
		OptionalScopesMissing: []string{"write_builds"},
		Capabilities:          connection.Capabilities{Annotate: true, Retry: false},
		Webhook: &connection.Webhook{
			ID:     "3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b",
			URL:    "https://hooks.example.com/hooks/3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b",
			Secret: "whsec-must-not-be-stored",
		},
		VerifiedAt: &verified,
		Error:      &connection.Error{Code: connection.CodeMissingScopes, Message: "add read_suites"},
		LastAttempt: &connection.Attempt{
			At:    verified.Add(time.Hour),
			Error: &connection.Error{Code: connection.CodeInvalidToken, Message: "Buildkite rejected the token"},
		},
		Tenant:    tenant,
		UpdatedAt: verified,
	}
}

// stored is rec as a store returns it after one put of rec.
func stored(rec connection.Record) connection.Record {
	rec.Version++
	if rec.Webhook != nil {
		w := *rec.Webhook
		w.Secret = ""
		rec.Webhook = &w
	}
	return rec
}

// RunRecords runs the shared behaviour of connection.Records. newRecords
// returns the store under test; each subtest calls it once and uses its
// own tenants and webhook ids.
func RunRecords(t *testing.T, newRecords func(t *testing.T) connection.Records) {
	t.Helper()
	ctx := context.Background()

	t.Run("get missing connection", func(t *testing.T) {
		r := newRecords(t)
		_, err := r.GetConnection(ctx, unique("nobody"))
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetConnection of a missing tenant: got error %v, want storage.ErrNotFound", err)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		tests := []struct {
			name string
			rec  func(tenant string) connection.Record
		}{
			{"full record", FullRecord},
			{"minimal record", func(tenant string) connection.Record {
				return connection.Record{State: connection.StateNotConnected, Tenant: tenant}
			}},
			{"empty lists and no expiry", func(tenant string) connection.Record {
				rec := FullRecord(tenant)
				rec.Organizations = []connection.Organization{}
				rec.OptionalScopesMissing = []string{}
				rec.Token.ExpiresAt = nil
				rec.Webhook = nil
				rec.LastAttempt = &connection.Attempt{At: rec.UpdatedAt}
				return rec
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := newRecords(t)
				rec := tt.rec(unique("tenant"))
				if err := r.PutConnection(ctx, rec); err != nil {
					t.Fatalf("PutConnection: %v", err)
				}
				got, err := r.GetConnection(ctx, rec.Tenant)
				if err != nil {
					t.Fatalf("GetConnection: %v", err)
				}
				if diff := cmp.Diff(stored(rec), got); diff != "" {
					t.Errorf("GetConnection after PutConnection mismatch (-want +got):\n%s", diff)
				}
				if rec.Webhook != nil && rec.Webhook.Secret == "" {
					t.Errorf("PutConnection cleared the caller's Webhook.Secret")
				}
			})
		}
	})

	t.Run("versions", func(t *testing.T) {
		r := newRecords(t)
		tenant := unique("tenant")
		rec := FullRecord(tenant)
		if err := r.PutConnection(ctx, rec); err != nil {
			t.Fatalf("first PutConnection: %v", err)
		}
		v1, err := r.GetConnection(ctx, tenant)
		if err != nil {
			t.Fatalf("GetConnection: %v", err)
		}

		tests := []struct {
			name    string
			version int64
			wantErr error
		}{
			{"create over an existing record", 0, storage.ErrConflict},
			{"stale version", 7, storage.ErrConflict},
			{"current version", v1.Version, nil},
			{"the same version again", v1.Version, storage.ErrConflict},
		}
		for _, tt := range tests {
			rec := v1
			rec.Version = tt.version
			rec.State = connection.StateFailed
			err := r.PutConnection(ctx, rec)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("%s: PutConnection(version %d): got error %v, want %v", tt.name, tt.version, err, tt.wantErr)
			}
		}

		got, err := r.GetConnection(ctx, tenant)
		if err != nil {
			t.Fatalf("GetConnection: %v", err)
		}
		want := v1
		want.State = connection.StateFailed
		want.Version = v1.Version + 1
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("record after updates mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("update of a missing record conflicts", func(t *testing.T) {
		r := newRecords(t)
		rec := FullRecord(unique("tenant"))
		rec.Version = 3
		if err := r.PutConnection(ctx, rec); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("PutConnection(version 3) of a missing record: got error %v, want storage.ErrConflict", err)
		}
		if _, err := r.GetConnection(ctx, rec.Tenant); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetConnection after a refused write: got error %v, want storage.ErrNotFound", err)
		}
	})

	t.Run("two writers of the same version", func(t *testing.T) {
		r := newRecords(t)
		tenant := unique("tenant")
		if err := r.PutConnection(ctx, FullRecord(tenant)); err != nil {
			t.Fatalf("PutConnection: %v", err)
		}
		base, err := r.GetConnection(ctx, tenant)
		if err != nil {
			t.Fatalf("GetConnection: %v", err)
		}
		states := []connection.State{connection.StateFailed, connection.StateDisconnected}
		errs := make([]error, len(states))
		var wg sync.WaitGroup
		for i, st := range states {
			wg.Go(func() {
				rec := base
				rec.State = st
				errs[i] = r.PutConnection(ctx, rec)
			})
		}
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner < 0:
				winner = i
			case err == nil:
				t.Fatalf("both writers of version %d won", base.Version)
			case !errors.Is(err, storage.ErrConflict):
				t.Fatalf("writer %d: got error %v, want nil or storage.ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no writer won: %v", errs)
		}
		got, err := r.GetConnection(ctx, tenant)
		if err != nil {
			t.Fatalf("GetConnection: %v", err)
		}
		want := base
		want.State = states[winner]
		want.Version = base.Version + 1
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("record after the race mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("tenants are apart", func(t *testing.T) {
		r := newRecords(t)
		a, b := FullRecord(unique("tenant-a")), FullRecord(unique("tenant-b"))
		b.State = connection.StateDisconnected
		for _, rec := range []connection.Record{a, b} {
			if err := r.PutConnection(ctx, rec); err != nil {
				t.Fatalf("PutConnection(%s): %v", rec.Tenant, err)
			}
		}
		for _, rec := range []connection.Record{a, b} {
			got, err := r.GetConnection(ctx, rec.Tenant)
			if err != nil {
				t.Fatalf("GetConnection(%s): %v", rec.Tenant, err)
			}
			if diff := cmp.Diff(stored(rec), got); diff != "" {
				t.Errorf("GetConnection(%s) mismatch (-want +got):\n%s", rec.Tenant, diff)
			}
		}
	})

	t.Run("webhook routes", func(t *testing.T) {
		r := newRecords(t)
		id, tenant, other := unique("hook"), unique("tenant"), unique("other")

		if _, err := r.WebhookTenant(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("WebhookTenant of a missing route: got error %v, want storage.ErrNotFound", err)
		}
		if err := r.DeleteWebhookRoute(ctx, id); err != nil {
			t.Fatalf("DeleteWebhookRoute of a missing route: %v", err)
		}
		if err := r.PutWebhookRoute(ctx, id, tenant); err != nil {
			t.Fatalf("PutWebhookRoute: %v", err)
		}
		if err := r.PutWebhookRoute(ctx, id, tenant); err != nil {
			t.Fatalf("PutWebhookRoute of the same route again: %v", err)
		}
		if err := r.PutWebhookRoute(ctx, id, other); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("PutWebhookRoute to another tenant: got error %v, want storage.ErrConflict", err)
		}
		got, err := r.WebhookTenant(ctx, id)
		if err != nil {
			t.Fatalf("WebhookTenant: %v", err)
		}
		if got != tenant {
			t.Errorf("WebhookTenant: got %q, want %q", got, tenant)
		}
		if err := r.DeleteWebhookRoute(ctx, id); err != nil {
			t.Fatalf("DeleteWebhookRoute: %v", err)
		}
		if _, err := r.WebhookTenant(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("WebhookTenant after delete: got error %v, want storage.ErrNotFound", err)
		}
		if err := r.PutWebhookRoute(ctx, id, other); err != nil {
			t.Fatalf("PutWebhookRoute of a deleted id to another tenant: %v", err)
		}
	})

	t.Run("leases", func(t *testing.T) {
		r := newRecords(t)
		tenant, other := unique("tenant"), unique("other")
		t0 := time.Now().UTC()
		ttl := 30 * time.Second
		steps := []struct {
			name    string
			do      func() error
			wantErr error
		}{
			{"take a free lease", func() error { return r.TakeLease(ctx, tenant, "a", t0, t0.Add(ttl)) }, nil},
			{"take it again, same holder", func() error { return r.TakeLease(ctx, tenant, "a", t0, t0.Add(ttl)) }, nil},
			{"another holder", func() error { return r.TakeLease(ctx, tenant, "b", t0.Add(time.Second), t0.Add(ttl)) }, storage.ErrConflict},
			{"another tenant", func() error { return r.TakeLease(ctx, other, "b", t0, t0.Add(ttl)) }, nil},
			{"release by a non-holder", func() error { return r.ReleaseLease(ctx, tenant, "b") }, nil},
			{"still held after that", func() error { return r.TakeLease(ctx, tenant, "b", t0, t0.Add(ttl)) }, storage.ErrConflict},
			{"release by the holder", func() error { return r.ReleaseLease(ctx, tenant, "a") }, nil},
			{"release again", func() error { return r.ReleaseLease(ctx, tenant, "a") }, nil},
			{"free again", func() error { return r.TakeLease(ctx, tenant, "b", t0, t0.Add(ttl)) }, nil},
			{"the old holder", func() error { return r.TakeLease(ctx, tenant, "a", t0, t0.Add(ttl)) }, storage.ErrConflict},
			{"expired: overtaken", func() error { return r.TakeLease(ctx, tenant, "c", t0.Add(ttl+time.Second), t0.Add(2*ttl)) }, nil},
			{"the holder that lost it releases", func() error { return r.ReleaseLease(ctx, tenant, "b") }, nil},
			{"the new holder keeps it", func() error { return r.TakeLease(ctx, tenant, "d", t0.Add(ttl+2*time.Second), t0.Add(2*ttl)) }, storage.ErrConflict},
		}
		for _, step := range steps {
			err := step.do()
			if step.wantErr == nil && err != nil || step.wantErr != nil && !errors.Is(err, step.wantErr) {
				t.Fatalf("%s: got error %v, want %v", step.name, err, step.wantErr)
			}
		}
	})

	t.Run("one of many lease takers wins", func(t *testing.T) {
		r := newRecords(t)
		tenant := unique("tenant")
		now := time.Now().UTC()
		const takers = 20
		errs := make([]error, takers)
		var wg sync.WaitGroup
		for i := range takers {
			wg.Go(func() {
				errs[i] = r.TakeLease(ctx, tenant, fmt.Sprintf("holder-%d", i), now, now.Add(time.Minute))
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrConflict):
				t.Errorf("taker %d: got error %v, want nil or storage.ErrConflict", i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d takers won the lease, want 1", won)
		}
	})
}

// RunSecrets runs the shared behaviour of connection.Secrets. newSecrets
// returns the store under test; each subtest calls it once and uses its
// own names.
func RunSecrets(t *testing.T, newSecrets func(t *testing.T) connection.Secrets) {
	t.Helper()
	ctx := context.Background()

	t.Run("get missing", func(t *testing.T) {
		s := newSecrets(t)
		_, err := s.GetSecret(ctx, unique("kitefix/nobody")+"/buildkite-api-token")
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetSecret of a missing name: got error %v, want storage.ErrNotFound", err)
		}
	})

	t.Run("delete missing", func(t *testing.T) {
		s := newSecrets(t)
		if err := s.DeleteSecret(ctx, unique("kitefix/nobody")+"/webhook-secret"); err != nil {
			t.Fatalf("DeleteSecret of a missing name: %v", err)
		}
	})

	t.Run("lifecycle", func(t *testing.T) {
		s := newSecrets(t)
		name := unique("kitefix/tenant") + "/buildkite-api-token"
		first, second := unique("bkua_first"), unique("bkua_second")

		steps := []struct {
			name    string
			do      func() error
			want    string
			wantErr error
		}{
			{"put", func() error { return s.PutSecret(ctx, name, first) }, first, nil},
			{"put again, same value", func() error { return s.PutSecret(ctx, name, first) }, first, nil},
			{"replace", func() error { return s.PutSecret(ctx, name, second) }, second, nil},
			{"delete", func() error { return s.DeleteSecret(ctx, name) }, "", storage.ErrNotFound},
			{"delete again", func() error { return s.DeleteSecret(ctx, name) }, "", storage.ErrNotFound},
			{"put after delete", func() error { return s.PutSecret(ctx, name, first) }, first, nil},
		}
		for _, step := range steps {
			if err := step.do(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			got, err := s.GetSecret(ctx, name)
			if step.wantErr != nil {
				if !errors.Is(err, step.wantErr) {
					t.Fatalf("%s: GetSecret: got error %v, want %v", step.name, err, step.wantErr)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: GetSecret: %v", step.name, err)
			}
			// Compare without printing the values.
			if got != step.want {
				t.Fatalf("%s: GetSecret returned another value than the one put", step.name)
			}
		}
	})

	t.Run("names are apart", func(t *testing.T) {
		s := newSecrets(t)
		prefix := unique("kitefix/tenant")
		values := map[string]string{
			prefix + "/buildkite-api-token": unique("bkua_token"),
			prefix + "/webhook-secret":      unique("whsec"),
		}
		for name, v := range values {
			if err := s.PutSecret(ctx, name, v); err != nil {
				t.Fatalf("PutSecret(%s): %v", name, err)
			}
		}
		for name, want := range values {
			got, err := s.GetSecret(ctx, name)
			if err != nil {
				t.Fatalf("GetSecret(%s): %v", name, err)
			}
			if got != want {
				t.Errorf("GetSecret(%s) returned another name's value or a wrong one", name)
			}
		}
	})
}
