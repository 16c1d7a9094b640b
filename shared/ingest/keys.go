package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/storage"
)

// keyTTL is the longest a warm process trusts the webhook keys it read: a
// rotation or disconnect reaches every process within a minute, while a
// burst of deliveries costs one Secrets Manager read.
const keyTTL = 60 * time.Second

// reloadAfter is how soon after a read keys may be read again because a
// delivery did not verify, so a flood of forged deliveries costs at most
// one read per webhook id in this long.
const reloadAfter = 5 * time.Second

// maxCachedKeys bounds the cache: far more webhook ids than one warm
// function sees, few enough to keep its memory small.
const maxCachedKeys = 1024

// webhookKeys are the tenant and keys behind one webhook id.
type webhookKeys struct {
	tenant   string
	keys     connection.WebhookKeys
	loadedAt time.Time
}

func (k *webhookKeys) secrets(now time.Time) []string { return k.keys.Valid(now) }

func (k *webhookKeys) reloadable(now time.Time) bool { return now.Sub(k.loadedAt) >= reloadAfter }

// keyCache holds webhook keys by webhook id for at most keyTTL.
type keyCache struct {
	mu      sync.Mutex
	entries map[string]*webhookKeys
}

func newKeyCache() *keyCache { return &keyCache{entries: map[string]*webhookKeys{}} }

func (c *keyCache) get(id string, now time.Time) *webhookKeys {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil || now.Sub(e.loadedAt) >= keyTTL || now.Before(e.loadedAt) {
		return nil
	}
	return e
}

func (c *keyCache) put(id string, e *webhookKeys, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedKeys {
		for k, old := range c.entries {
			if now.Sub(old.loadedAt) >= keyTTL {
				delete(c.entries, k)
			}
		}
	}
	if len(c.entries) >= maxCachedKeys {
		// Still full of live entries: drop any one (map order is random).
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = e
}

func (c *keyCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}

// keysFor returns the tenant and keys of webhookID, from the cache unless
// fresh is set. An unknown id, or a tenant without a webhook secret, is an
// *authError.
func (h *Handler) keysFor(ctx context.Context, webhookID string, fresh bool) (*webhookKeys, error) {
	now := h.cfg.Now()
	if !fresh {
		if e := h.keys.get(webhookID, now); e != nil {
			return e, nil
		}
	}
	tenant, err := h.cfg.Routes.WebhookTenant(ctx, webhookID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		h.keys.drop(webhookID)
		return nil, &authError{check: "unknown_webhook"}
	case err != nil:
		return nil, fmt.Errorf("load webhook route: %w", err)
	}
	value, err := h.cfg.Secrets.GetSecret(ctx, connection.WebhookSecretName(h.cfg.SecretPrefix, tenant))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		h.keys.drop(webhookID)
		return nil, &authError{check: "no_webhook_secret", tenant: tenant}
	case err != nil:
		return nil, fmt.Errorf("load webhook secret: %w", err)
	}
	keys, err := connection.ParseWebhookKeys(value)
	if err != nil {
		return nil, err
	}
	e := &webhookKeys{tenant: tenant, keys: keys, loadedAt: now}
	h.keys.put(webhookID, e, now)
	return e, nil
}

// noteEvery is how often a process records a tenant's last delivery: the
// settings page shows it to the minute, and a busy organization's
// deliveries do not each cost a write.
const noteEvery = time.Minute

// noteThrottle remembers when each tenant and webhook last had a delivery
// recorded.
type noteThrottle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func newNoteThrottle() *noteThrottle { return &noteThrottle{last: map[string]time.Time{}} }

// due reports whether a delivery under key (tenant and webhook id) at now
// should be recorded, and assumes it will be.
func (n *noteThrottle) due(key string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.last[key]; ok && now.Sub(t) < noteEvery && !now.Before(t) {
		return false
	}
	if len(n.last) >= maxCachedKeys {
		clear(n.last)
	}
	n.last[key] = now
	return true
}

// forget makes the next delivery under key due, after a failed write.
func (n *noteThrottle) forget(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.last, key)
}
