package connection

import (
	"context"
	"time"
)

// Records keeps status records and the webhook id → tenant routes.
// Implementations return storage.ErrNotFound, storage.ErrConflict and
// storage.ErrUnavailable (wrapped) so callers can branch with errors.Is.
type Records interface {
	// GetConnection returns the tenant's record, or storage.ErrNotFound.
	GetConnection(ctx context.Context, tenant string) (Record, error)
	// PutConnection writes rec only if the stored version equals
	// rec.Version (0: no record stored yet); the stored version becomes
	// rec.Version+1. A lost race returns storage.ErrConflict.
	// Webhook.Secret is never stored.
	PutConnection(ctx context.Context, rec Record) error
	// PutWebhookRoute maps a webhook id to its tenant.
	PutWebhookRoute(ctx context.Context, webhookID, tenant string) error
	// WebhookTenant returns the tenant of a webhook id, or storage.ErrNotFound.
	WebhookTenant(ctx context.Context, webhookID string) (string, error)
	// DeleteWebhookRoute removes a route; a missing one is not an error.
	DeleteWebhookRoute(ctx context.Context, webhookID string) error

	// TakeLease makes holder the owner of tenant's lease until until, when
	// the lease is free, expired at now, or already holder's. Otherwise it
	// returns storage.ErrConflict. Every change to a tenant's connection
	// happens under its lease: records and secrets live in two services
	// with no transaction across them.
	TakeLease(ctx context.Context, tenant, holder string, now, until time.Time) error
	// ReleaseLease frees tenant's lease if holder still owns it; a lease
	// that expired and was taken over is left alone.
	ReleaseLease(ctx context.Context, tenant, holder string) error
}

// Secrets keeps secret values by name (Secrets Manager, or the local sealed
// store). Names are built by SecretName.
type Secrets interface {
	// PutSecret creates or replaces the value of name.
	PutSecret(ctx context.Context, name, value string) error
	// GetSecret returns the value of name, or storage.ErrNotFound.
	GetSecret(ctx context.Context, name string) (string, error)
	// DeleteSecret removes name at once; a missing one is not an error.
	DeleteSecret(ctx context.Context, name string) error
}
