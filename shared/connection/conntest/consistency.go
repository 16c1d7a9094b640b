package conntest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/storage"
)

// Stores is one adapter set under test: the records, the secrets, and a way
// to see every webhook route a tenant has (routes the record no longer
// names included), which the connection ports do not offer.
type Stores struct {
	Records connection.Records
	Secrets connection.Secrets
	// Routes returns the ids of every webhook route to tenant.
	Routes func(ctx context.Context, tenant string) ([]string, error)
}

// Scenario sizes: what a busy team or a double-clicking page produces.
const (
	// parallelRotates and parallelConnects are the bursts on one tenant.
	parallelRotates  = 50
	parallelConnects = 50
	// connectsAgainstDisconnect race one disconnect.
	connectsAgainstDisconnect = 8
	// scenarioTokens are the distinct tokens the bursts connect with.
	scenarioTokens = 5
)

// RunConsistency runs the connection lifecycle's concurrent scenarios runs
// times each on the stores newStores returns, and checks after every run
// that what the responses said is what is stored:
//
//   - parallel rotations: every secret handed out verifies;
//   - parallel connects from disconnected: each answers success or
//     conflict (never a storage failure), one webhook secret is handed out
//     and verifies, one route exists, the record's;
//   - a disconnect racing connects: disconnected means no token, webhook
//     secret or route is stored; connected means all three are, matching
//     the record.
func RunConsistency(t *testing.T, runs int, newStores func(t *testing.T) Stores) {
	t.Helper()
	ctx := context.Background()

	t.Run("parallel rotations", func(t *testing.T) {
		st := newStores(t)
		svc, tokens := newScenarioService(st)
		for run := range runs {
			tenant, first := connectNewTenant(ctx, t, svc, tokens[0], run)
			handed := []string{first.Webhook.Secret}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range parallelRotates {
				wg.Go(func() {
					rec, err := svc.RotateWebhookSecret(ctx, tenant)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						checkConflict(t, "RotateWebhookSecret", err)
						return
					}
					handed = append(handed, rec.Webhook.Secret)
				})
			}
			wg.Wait()
			if len(handed) < 2 {
				t.Errorf("run %d: no rotation succeeded", run)
			}
			valid := webhookKeys(t, st, tenant).Valid(time.Now())
			for i, secret := range handed {
				if !slices.Contains(valid, secret) {
					t.Errorf("run %d: webhook secret %d of %d handed out does not verify", run, i, len(handed))
				}
			}
			checkState(t, st, tenant, tokens)
		}
	})

	t.Run("parallel connects from disconnected", func(t *testing.T) {
		st := newStores(t)
		svc, tokens := newScenarioService(st)
		for run := range runs {
			tenant, _ := connectNewTenant(ctx, t, svc, tokens[0], run)
			if _, err := svc.Disconnect(ctx, tenant); err != nil {
				t.Fatalf("run %d: Disconnect: %v", run, err)
			}
			var (
				mu     sync.Mutex
				handed []string
				urls   []string
				wg     sync.WaitGroup
			)
			for i := range parallelConnects {
				wg.Go(func() {
					token := tokens[i%len(tokens)]
					rec, err := svc.Connect(ctx, tenant, token)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						checkConflict(t, "Connect", err)
						return
					}
					if rec.State != connection.StateConnected || rec.Token == nil || rec.Token.UUID != uuidOf(token) || rec.Webhook == nil {
						t.Errorf("Connect answered success with a record that is not this token's connection (state %q)", rec.State)
						return
					}
					urls = append(urls, rec.Webhook.URL)
					if rec.Webhook.Secret != "" {
						handed = append(handed, rec.Webhook.Secret)
					}
				})
			}
			wg.Wait()
			rec := checkState(t, st, tenant, tokens)
			if rec.State != connection.StateConnected {
				t.Fatalf("run %d: state %q after the connects, want connected", run, rec.State)
			}
			if len(handed) != 1 {
				t.Errorf("run %d: %d webhook secrets handed out, want 1", run, len(handed))
			}
			valid := webhookKeys(t, st, tenant).Valid(time.Now())
			for _, secret := range handed {
				if !slices.Contains(valid, secret) {
					t.Errorf("run %d: the webhook secret handed out does not verify", run)
				}
			}
			for _, u := range urls {
				if u != rec.Webhook.URL {
					t.Errorf("run %d: a connect answered webhook URL %s, the record has %s", run, u, rec.Webhook.URL)
				}
			}
		}
	})

	t.Run("disconnect racing connects", func(t *testing.T) {
		st := newStores(t)
		svc, tokens := newScenarioService(st)
		for run := range runs {
			tenant, first := connectNewTenant(ctx, t, svc, tokens[0], run)
			var (
				mu     sync.Mutex
				handed []string
				wg     sync.WaitGroup
			)
			wg.Go(func() {
				rec, err := svc.Disconnect(ctx, tenant)
				if err != nil {
					checkConflict(t, "Disconnect", err)
				} else if rec.State != connection.StateDisconnected {
					t.Errorf("Disconnect answered success with state %q", rec.State)
				}
			})
			for i := range connectsAgainstDisconnect {
				wg.Go(func() {
					rec, err := svc.Connect(ctx, tenant, tokens[i%len(tokens)])
					if err != nil {
						checkConflict(t, "Connect", err)
						return
					}
					if rec.Webhook != nil && rec.Webhook.Secret != "" {
						mu.Lock()
						handed = append(handed, rec.Webhook.Secret)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			rec := checkState(t, st, tenant, tokens)
			if len(handed) > 1 {
				t.Errorf("run %d: %d webhook secrets handed out after one disconnect, want at most 1", run, len(handed))
			}
			if rec.State == connection.StateConnected {
				// The newest secret handed out is the one that verifies.
				latest := first.Webhook.Secret
				if len(handed) == 1 {
					latest = handed[0]
				}
				if !slices.Contains(webhookKeys(t, st, tenant).Valid(time.Now()), latest) {
					t.Errorf("run %d: connected, but the webhook secret handed out last does not verify", run)
				}
			}
		}
	})
}

// newScenarioService is a connection service over st with a Buildkite that
// accepts scenarioTokens tokens, which it returns.
// connectNewTenant connects a tenant of a new name with token, failing run
// when it cannot.
func connectNewTenant(ctx context.Context, t *testing.T, svc *connection.Service, token string, run int) (string, connection.Record) {
	t.Helper()
	tenant := unique("tenant")
	rec, err := svc.Connect(ctx, tenant, token)
	if err != nil {
		t.Fatalf("run %d: Connect: %v", run, err)
	}
	return tenant, rec
}

func newScenarioService(st Stores) (*connection.Service, []string) {
	tokens := make([]string, scenarioTokens)
	for i := range tokens {
		b := make([]byte, 20)
		_, _ = rand.Read(b)
		tokens[i] = "bkua_" + hex.EncodeToString(b)
	}
	svc := connection.NewService(connection.Config{
		Records:        st.Records,
		Secrets:        st.Secrets,
		Buildkite:      func(token string) connection.Buildkite { return acceptAll{token: token} },
		SecretPrefix:   scenarioPrefix,
		WebhookBaseURL: "https://hooks.example.com",
		// Every waiter of a burst gets its turn, even on a slow server.
		LeaseWait: 30 * time.Second,
	})
	return svc, tokens
}

// scenarioPrefix is the secret prefix of the scenarios' services; each run
// uses a tenant of its own.
const scenarioPrefix = "kitefix-test/"

func tokenSecretName(tenant string) string {
	return connection.TokenSecretName(scenarioPrefix, tenant)
}

func webhookSecretName(tenant string) string {
	return connection.WebhookSecretName(scenarioPrefix, tenant)
}

// acceptAll is a Buildkite that accepts every token with every scope; the
// token's UUID is derived from the token, so a record shows which one it
// holds.
type acceptAll struct{ token string }

func (a acceptAll) AccessToken(context.Context) (buildkite.AccessToken, error) {
	return buildkite.AccessToken{
		UUID:        uuidOf(a.token),
		Description: "kitefix",
		Scopes:      append(append([]string{}, connection.RequiredScopes...), connection.OptionalScopes...),
		CreatedAt:   time.Date(2025, 7, 23, 6, 7, 42, 0, time.UTC),
		User:        buildkite.User{Name: "Ada", Email: "ada@example.com"},
	}, nil
}

func (acceptAll) Organizations(context.Context) ([]buildkite.Organization, error) {
	return []buildkite.Organization{{Slug: "acme", Name: "Acme"}}, nil
}

// uuidOf is the UUID acceptAll gives token: not the token, not secret.
func uuidOf(token string) string {
	if len(token) < 12 {
		return "uuid-" + token
	}
	return "uuid-" + token[len(token)-12:]
}

// checkConflict fails the test unless err is a conflict: a lost race must
// never be a storage failure.
func checkConflict(t *testing.T, op string, err error) {
	t.Helper()
	if f := connection.AsFailure(err); f.Code != connection.CodeConflict {
		t.Errorf("%s: code %q (%v), want success or conflict", op, f.Code, err)
	}
}

// webhookKeys returns tenant's stored webhook keys.
func webhookKeys(t *testing.T, st Stores, tenant string) connection.WebhookKeys {
	t.Helper()
	v, err := st.Secrets.GetSecret(context.Background(), webhookSecretName(tenant))
	if err != nil {
		t.Fatalf("load webhook secret: %v", err)
	}
	k, err := connection.ParseWebhookKeys(v)
	if err != nil {
		t.Fatalf("parse webhook keys: %v", err)
	}
	return k
}

// checkState checks that tenant's stored record, secrets and routes agree,
// and returns the record.
func checkState(t *testing.T, st Stores, tenant string, tokens []string) connection.Record {
	t.Helper()
	ctx := context.Background()
	rec, err := st.Records.GetConnection(ctx, tenant)
	if err != nil {
		t.Fatalf("GetConnection: %v", err)
	}
	routes, err := st.Routes(ctx, tenant)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	token, tokenErr := st.Secrets.GetSecret(ctx, tokenSecretName(tenant))
	hook, hookErr := st.Secrets.GetSecret(ctx, webhookSecretName(tenant))
	if tokenErr != nil && !errors.Is(tokenErr, storage.ErrNotFound) {
		t.Fatalf("load token: %v", tokenErr)
	}
	if hookErr != nil && !errors.Is(hookErr, storage.ErrNotFound) {
		t.Fatalf("load webhook secret: %v", hookErr)
	}
	switch rec.State {
	case connection.StateDisconnected:
		if tokenErr == nil {
			t.Errorf("disconnected, but a token is stored")
		}
		if hookErr == nil {
			t.Errorf("disconnected, but a webhook secret is stored")
		}
		if rec.Webhook != nil || rec.Token != nil {
			t.Errorf("disconnected record still has a webhook or token: %+v", rec)
		}
		if len(routes) != 0 {
			t.Errorf("disconnected, but %d webhook routes remain", len(routes))
		}
	case connection.StateConnected:
		switch {
		case tokenErr != nil:
			t.Errorf("connected, but no token is stored")
		case !slices.Contains(tokens, token):
			t.Errorf("connected, but the stored token is none of the ones connected")
		case rec.Token == nil || rec.Token.UUID != uuidOf(token):
			t.Errorf("connected, but the record describes another token than the one stored")
		}
		if hookErr != nil {
			t.Errorf("connected, but no webhook secret is stored")
		} else if _, err := connection.ParseWebhookKeys(hook); err != nil {
			t.Errorf("stored webhook secret: %v", err)
		}
		if rec.Webhook == nil {
			t.Errorf("connected record has no webhook")
		} else if !slices.Equal(routes, []string{rec.Webhook.ID}) {
			t.Errorf("webhook routes %v, want only the record's %s", routes, rec.Webhook.ID)
		}
	default:
		t.Errorf("state %q, want connected or disconnected", rec.State)
	}
	// No change may leave its lease behind.
	now := time.Now()
	if err := st.Records.TakeLease(ctx, tenant, "checker", now, now.Add(time.Second)); err != nil {
		t.Errorf("the tenant's lease is still held after every change returned: %v", err)
	} else if err := st.Records.ReleaseLease(ctx, tenant, "checker"); err != nil {
		t.Errorf("release lease: %v", err)
	}
	return rec
}
