package connection

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
)

func TestBusyLeaseIsConflict(t *testing.T) {
	h := newHarness()
	h.svc.leaseWait = 30 * time.Millisecond
	ctx := context.Background()
	if _, err := h.svc.Connect(ctx, "t1", goodToken); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := h.records.TakeLease(ctx, "t1", "someone else", testNow, testNow.Add(LeaseTTL)); err != nil {
		t.Fatalf("TakeLease: %v", err)
	}
	calls := []struct {
		name string
		call func() (Record, error)
	}{
		{"connect", func() (Record, error) { return h.svc.Connect(ctx, "t1", otherToken) }},
		{"failed connect", func() (Record, error) { return h.svc.Connect(ctx, "t1", "bkua_unknown") }},
		{"verify", func() (Record, error) { return h.svc.Verify(ctx, "t1") }},
		{"rotate", func() (Record, error) { return h.svc.RotateWebhookSecret(ctx, "t1") }},
		{"disconnect", func() (Record, error) { return h.svc.Disconnect(ctx, "t1") }},
	}
	for _, c := range calls {
		rec, err := c.call()
		if codeOf(err) != CodeConflict || rec.State != StateConnected {
			t.Errorf("%s under another's lease: code %q state %q, want conflict and the connection as it was", c.name, codeOf(err), rec.State)
		}
		if f := AsFailure(err); !strings.Contains(f.Message, "Try again") {
			t.Errorf("%s: message %q does not say what to do", c.name, f.Message)
		}
	}
	if tok, _ := h.secrets.GetSecret(ctx, TokenSecretName("kitefix/", "t1")); tok != goodToken {
		t.Errorf("a refused change replaced the token")
	}

	// A holder that died is overtaken once its lease expires.
	h.advance(LeaseTTL)
	rec, err := h.svc.Disconnect(ctx, "t1")
	if err != nil || rec.State != StateDisconnected {
		t.Errorf("Disconnect after the lease expired = %q, %v; want disconnected", rec.State, err)
	}
}

func TestFailedConnectUndoesItsWrites(t *testing.T) {
	boom := errors.New("connection reset")
	ctx := context.Background()

	t.Run("first connect", func(t *testing.T) {
		h := newHarness()
		h.records.failPut = boom
		rec, err := h.svc.Connect(ctx, "t1", goodToken)
		if f := AsFailure(err); f.Code != CodeStorageUnavailable || !strings.Contains(f.Message, "nothing was changed") || rec.State != StateNotConnected {
			t.Errorf("Connect = %q, %v; want storage_unavailable saying nothing was changed", rec.State, err)
		}
		if len(h.secrets.values) != 0 || len(h.records.routes) != 0 {
			t.Errorf("left behind: %d secrets, %d routes; want none", len(h.secrets.values), len(h.records.routes))
		}
	})

	t.Run("reconnect keeps the working token", func(t *testing.T) {
		h := newHarness()
		first, err := h.svc.Connect(ctx, "t1", goodToken)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		keys := h.webhookKeys(t, "t1")
		h.records.failPut = boom
		rec, err := h.svc.Connect(ctx, "t1", otherToken)
		if codeOf(err) != CodeStorageUnavailable || rec.State != StateConnected || rec.Token.UUID != "uuid-good" {
			t.Errorf("Connect = %q, %v; want storage_unavailable and the first connection", rec.State, err)
		}
		if tok, _ := h.secrets.GetSecret(ctx, TokenSecretName("kitefix/", "t1")); tok != goodToken {
			t.Errorf("the stored token is not the working one")
		}
		if h.webhookKeys(t, "t1") != keys {
			t.Errorf("the webhook keys changed")
		}
		if tenant, err := h.records.WebhookTenant(ctx, first.Webhook.ID); err != nil || tenant != "t1" {
			t.Errorf("the working webhook route is gone: %q, %v", tenant, err)
		}
	})

	t.Run("route write fails", func(t *testing.T) {
		h := newHarness()
		h.records.failRoute = boom
		if _, err := h.svc.Connect(ctx, "t1", goodToken); codeOf(err) != CodeStorageUnavailable {
			t.Errorf("Connect: code %q, want storage_unavailable", codeOf(err))
		}
		if len(h.secrets.values) != 0 {
			t.Errorf("left behind %d secrets", len(h.secrets.values))
		}
	})

	t.Run("webhook id taken by another tenant", func(t *testing.T) {
		h := newHarness()
		h.svc.random = zeros{}
		taken := strings.Repeat("0", 32)
		h.records.routes[taken] = "other"
		if _, err := h.svc.Connect(ctx, "t1", goodToken); codeOf(err) != CodeConflict {
			t.Errorf("Connect: code %q (%v), want conflict", codeOf(err), err)
		}
		if h.records.routes[taken] != "other" {
			t.Errorf("the other tenant's route was undone")
		}
		if len(h.secrets.values) != 0 {
			t.Errorf("left behind %d secrets", len(h.secrets.values))
		}
	})

	t.Run("undo fails too", func(t *testing.T) {
		h := newHarness()
		if _, err := h.svc.Connect(ctx, "t1", goodToken); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		h.records.failPut = boom
		// The new token is put, and the put restoring the old one fails.
		h.secrets.failPut, h.secrets.failPuts = boom, 2
		h.secrets.values[TokenSecretName("kitefix/", "t1")] = goodToken
		_, err := h.svc.Connect(ctx, "t1", otherToken)
		f := AsFailure(err)
		if f.Code != CodeStorageUnavailable || strings.Contains(f.Message, "nothing was changed") {
			t.Errorf("Connect: %v; want storage_unavailable that does not claim nothing changed", err)
		}
	})
}

func TestFailedRotationRestores(t *testing.T) {
	ctx := context.Background()
	h := newHarness()
	first, err := h.svc.Connect(ctx, "t1", goodToken)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	// The put lands but its answer is lost: the old keys go back.
	h.secrets.failPut, h.secrets.failPuts, h.secrets.landed = errors.New("timeout"), 1, true
	_, err = h.svc.RotateWebhookSecret(ctx, "t1")
	if f := AsFailure(err); f.Code != CodeStorageUnavailable || !strings.Contains(f.Message, "nothing was changed") {
		t.Errorf("Rotate: %v; want storage_unavailable saying nothing was changed", err)
	}
	if k := h.webhookKeys(t, "t1"); k.Current != first.Webhook.Secret || k.Previous != "" {
		t.Errorf("after a failed rotation the stored keys are not the ones before it")
	}
}

func TestVerifyOfAReplacedToken(t *testing.T) {
	ctx := context.Background()
	h := newHarness()
	if _, err := h.svc.Connect(ctx, "t1", goodToken); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	// While Buildkite checks the stored token, another request connects
	// a different one; the check is about a token no longer stored.
	name := TokenSecretName("kitefix/", "t1")
	h.svc.newBuildkite = func(token string) Buildkite {
		_ = h.secrets.PutSecret(ctx, name, otherToken)
		h.bk.tokens[goodToken] = fakeToken{err: &buildkite.APIError{StatusCode: 401, Message: "Authentication required"}}
		return h.bk.client(token)
	}
	rec, err := h.svc.Verify(ctx, "t1")
	if codeOf(err) != CodeConflict || rec.State != StateConnected {
		t.Errorf("Verify = %q, %v; want conflict and the connection left connected", rec.State, err)
	}
}

func TestDisconnectFailureSaysUnfinished(t *testing.T) {
	ctx := context.Background()
	h := newHarness()
	if _, err := h.svc.Connect(ctx, "t1", goodToken); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	h.records.failPut = errors.New("throttled")
	_, err := h.svc.Disconnect(ctx, "t1")
	if f := AsFailure(err); f.Code != CodeStorageUnavailable || strings.Contains(f.Message, "nothing was changed") || !strings.Contains(f.Message, "did not finish") {
		t.Errorf("Disconnect: %v; want storage_unavailable saying it did not finish", err)
	}
	h.records.failPut = nil
	rec, err := h.svc.Disconnect(ctx, "t1")
	if err != nil || rec.State != StateDisconnected || len(h.secrets.values) != 0 || len(h.records.routes) != 0 {
		t.Errorf("Disconnect again = %q, %v, %d secrets, %d routes; want it finished", rec.State, err, len(h.secrets.values), len(h.records.routes))
	}
}

// TestParallelChanges runs the concurrent scenarios on the in-memory
// stores; the adapters run them too (conntest.RunConsistency).
func TestParallelChanges(t *testing.T) {
	ctx := context.Background()
	const parallel = 50
	t.Run("rotates", func(t *testing.T) {
		h := newHarness()
		first, err := h.svc.Connect(ctx, "t1", goodToken)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		secrets := []string{first.Webhook.Secret}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				rec, err := h.svc.RotateWebhookSecret(ctx, "t1")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					secrets = append(secrets, rec.Webhook.Secret)
				case codeOf(err) != CodeConflict:
					t.Errorf("Rotate: %v; want success or conflict", err)
				}
			})
		}
		wg.Wait()
		valid := h.webhookKeys(t, "t1").Valid(testNow)
		for i, s := range secrets {
			if !slices.Contains(valid, s) {
				t.Errorf("secret %d handed out does not verify", i)
			}
		}
		if len(secrets) < 2 {
			t.Errorf("no rotation succeeded")
		}
	})
	t.Run("connects", func(t *testing.T) {
		h := newHarness()
		if _, err := h.svc.Connect(ctx, "t1", goodToken); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if _, err := h.svc.Disconnect(ctx, "t1"); err != nil {
			t.Fatalf("Disconnect: %v", err)
		}
		var handed []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range parallel {
			wg.Go(func() {
				rec, err := h.svc.Connect(ctx, "t1", []string{goodToken, otherToken}[i%2])
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && rec.Webhook.Secret != "":
					handed = append(handed, rec.Webhook.Secret)
				case err != nil && codeOf(err) != CodeConflict:
					t.Errorf("Connect: %v; want success or conflict", err)
				}
			})
		}
		wg.Wait()
		rec, _ := h.records.GetConnection(ctx, "t1")
		if len(handed) != 1 || !slices.Contains(h.webhookKeys(t, "t1").Valid(testNow), handed[0]) {
			t.Errorf("%d webhook secrets handed out; want one, and that it verifies", len(handed))
		}
		if len(h.records.routes) != 1 || h.records.routes[rec.Webhook.ID] != "t1" {
			t.Errorf("routes = %v; want only the record's %s", h.records.routes, rec.Webhook.ID)
		}
	})
}

// zeros reads as zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
