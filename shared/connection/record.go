// Package connection holds the lifecycle of a tenant's Buildkite connection:
// verifying an API access token, storing it, and keeping the status record
// the settings page shows.
package connection

import "time"

// State is where a tenant's connection stands.
type State string

// The states of a connection.
const (
	StateNotConnected State = "not_connected"
	StateConnected    State = "connected"
	StateFailed       State = "failed"
	StateDisconnected State = "disconnected"
)

// Record is a tenant's status record: what the settings API returns and what
// the records store keeps. It never holds a token or a webhook secret, except
// Webhook.Secret, which is filled only in the response that created or
// rotated it and is never stored.
type Record struct {
	State                 State          `json:"state"`
	Token                 *TokenInfo     `json:"token,omitempty"`
	Organizations         []Organization `json:"organizations"`
	MissingScopes         []string       `json:"missing_scopes"`
	OptionalScopesMissing []string       `json:"optional_scopes_missing"`
	Capabilities          Capabilities   `json:"capabilities"`
	Webhook               *Webhook       `json:"webhook,omitempty"`
	VerifiedAt            *time.Time     `json:"verified_at,omitempty"`
	Error                 *Error         `json:"error,omitempty"`
	LastAttempt           *Attempt       `json:"last_attempt,omitempty"`

	// Tenant owns the record. Not part of the API shape.
	Tenant string `json:"-"`
	// Version counts the writes of the record; stores write it
	// conditionally (see Records.PutConnection). Zero means never stored.
	Version int64 `json:"-"`
	// UpdatedAt is when the record was last written.
	UpdatedAt time.Time `json:"-"`
}

// TokenInfo describes the connected API access token (never the token).
type TokenInfo struct {
	UUID        string     `json:"uuid"`
	Description string     `json:"description"`
	Scopes      []string   `json:"scopes"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	User        User       `json:"user"`
}

// User owns a token.
type User struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Organization is a Buildkite organization the token can reach.
type Organization struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// Capabilities are what the optional scopes turn on.
type Capabilities struct {
	Annotate bool `json:"annotate"`
	Retry    bool `json:"retry"`
}

// Webhook is where Buildkite should send webhooks for this tenant.
type Webhook struct {
	// ID is the random webhook id in the URL; it maps to the tenant.
	ID     string `json:"-"`
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
	// Events and Signature say what else to set in Buildkite's webhook
	// settings (see WebhookEvents); they are not stored.
	Events    []string `json:"events,omitempty"`
	Signature string   `json:"signature,omitempty"`
	// LastDeliveryAt is when the webhook last delivered (see DeliveryLog).
	LastDeliveryAt *time.Time `json:"last_delivery_at,omitempty"`
}

// Error is a failure a person can act on.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Attempt is the outcome of the last connect or verify that failed while a
// working connection stayed in place.
type Attempt struct {
	At    time.Time `json:"at"`
	Error *Error    `json:"error,omitempty"`
}
