package connection

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RotationGrace is how long the previous webhook secret keeps verifying
// after a rotation: long enough for someone to paste the new secret into
// Buildkite's notification settings, short enough that a leaked secret
// dies within a day.
const RotationGrace = 24 * time.Hour

// WebhookKeys is the value stored under WebhookSecretName: the secret that
// signs the tenant's webhooks now and, for RotationGrace after a rotation,
// the one before it. Its String method never prints a secret.
type WebhookKeys struct {
	Current       string    `json:"current"`
	Previous      string    `json:"previous,omitempty"`
	PreviousUntil time.Time `json:"previous_until,omitzero"`
}

// ParseWebhookKeys reads a stored WebhookKeys value. A value that is not a
// JSON object (a secret stored before rotation grace existed) is the
// current secret alone.
func ParseWebhookKeys(value string) (WebhookKeys, error) {
	if !strings.HasPrefix(value, "{") {
		if value == "" {
			return WebhookKeys{}, errors.New("parse webhook keys: empty value")
		}
		return WebhookKeys{Current: value}, nil
	}
	var k WebhookKeys
	if err := json.Unmarshal([]byte(value), &k); err != nil {
		// The JSON error could quote part of the value: keep it out.
		return WebhookKeys{}, errors.New("parse webhook keys: not a valid keys object")
	}
	if k.Current == "" {
		return WebhookKeys{}, errors.New("parse webhook keys: no current secret")
	}
	return k, nil
}

// Encode returns the value to store.
func (k WebhookKeys) Encode() string {
	b, err := json.Marshal(k)
	if err != nil {
		// Strings and a time always marshal.
		panic(fmt.Sprintf("encode webhook keys: %v", err))
	}
	return string(b)
}

// Rotated returns the keys after a rotation to next at now: the current
// secret becomes the previous one until now+RotationGrace.
func (k WebhookKeys) Rotated(next string, now time.Time) WebhookKeys {
	return WebhookKeys{Current: next, Previous: k.Current, PreviousUntil: now.UTC().Add(RotationGrace)}
}

// Valid returns the secrets that verify a delivery at now: the current one,
// then the previous one while its grace lasts.
func (k WebhookKeys) Valid(now time.Time) []string {
	out := []string{k.Current}
	if k.Previous != "" && now.Before(k.PreviousUntil) {
		out = append(out, k.Previous)
	}
	return out
}

// String hides the secrets.
func (k WebhookKeys) String() string { return "WebhookKeys{redacted}" }

// GoString hides the secrets from %#v.
func (k WebhookKeys) GoString() string { return k.String() }
