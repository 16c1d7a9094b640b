package connection

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/storage"
)

var (
	testNow     = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	created     = time.Date(2025, 7, 23, 6, 7, 42, 0, time.UTC)
	allScopes   = append(append([]string{}, RequiredScopes...), "write_builds")
	acmeOrg     = []buildkite.Organization{{Slug: "acme", Name: "Acme"}}
	goodToken   = "bkua_1111111111111111111111111111111111111111"
	otherToken  = "bkua_2222222222222222222222222222222222222222"
	readOnly    = "bkua_3333333333333333333333333333333333333333"
	fewScopes   = "bkua_4444444444444444444444444444444444444444"
	expired     = "bkua_5555555555555555555555555555555555555555"
	noOrgs      = "bkua_6666666666666666666666666666666666666666"
	limited     = "bkua_7777777777777777777777777777777777777777"
	down        = "bkua_8888888888888888888888888888888888888888"
	forbidOrgs  = "bkua_9999999999999999999999999999999999999999"
	expiredSays = "bkua_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

func tokenOf(uuid string, scopes []string) buildkite.AccessToken {
	return buildkite.AccessToken{
		UUID: uuid, Description: "kitefix", Scopes: scopes, CreatedAt: created,
		User: buildkite.User{Name: "Ada", Email: "ada@example.com"},
	}
}

func newFakeBuildkite() *fakeBuildkite {
	past := testNow.Add(-time.Hour)
	expiredInfo := tokenOf("uuid-expired", allScopes)
	expiredInfo.ExpiresAt = &past
	return &fakeBuildkite{tokens: map[string]fakeToken{
		goodToken:   {info: tokenOf("uuid-good", allScopes), orgs: acmeOrg},
		otherToken:  {info: tokenOf("uuid-other", allScopes), orgs: acmeOrg},
		readOnly:    {info: tokenOf("uuid-ro", RequiredScopes), orgs: acmeOrg},
		fewScopes:   {info: tokenOf("uuid-few", []string{"read_builds", "read_user"}), orgs: acmeOrg},
		expired:     {info: expiredInfo, orgs: acmeOrg},
		noOrgs:      {info: tokenOf("uuid-noorgs", allScopes), orgs: nil},
		forbidOrgs:  {info: tokenOf("uuid-forbid", allScopes), orgsErr: &buildkite.APIError{StatusCode: 403, Message: "Forbidden"}},
		limited:     {err: &buildkite.APIError{StatusCode: 429, Message: "rate limited", RetryAfter: 42 * time.Second}},
		down:        {err: &buildkite.APIError{StatusCode: 503, Message: "unavailable"}},
		expiredSays: {err: &buildkite.APIError{StatusCode: 401, Message: "Your API access token has expired"}},
	}}
}

type harness struct {
	svc     *Service
	records *memRecords
	secrets *memSecrets
	bk      *fakeBuildkite
	logs    *bytes.Buffer
	// elapsed is how far the service's clock is past testNow.
	elapsed atomic.Int64
}

func newHarness() *harness {
	h := &harness{records: newMemRecords(), secrets: newMemSecrets(), bk: newFakeBuildkite(), logs: &bytes.Buffer{}}
	h.svc = NewService(Config{
		Records: h.records, Secrets: h.secrets, Buildkite: h.bk.client,
		WebhookBaseURL: "https://hooks.example.com/",
		Now:            func() time.Time { return testNow.Add(time.Duration(h.elapsed.Load())) },
		Logger:         slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return h
}

// advance moves the service's clock on by d.
func (h *harness) advance(d time.Duration) { h.elapsed.Add(int64(d)) }

// webhookKeys returns tenant's stored webhook keys.
func (h *harness) webhookKeys(t *testing.T, tenant string) WebhookKeys {
	t.Helper()
	v, err := h.secrets.GetSecret(context.Background(), WebhookSecretName("kitefix/", tenant))
	if err != nil {
		t.Fatalf("load webhook secret: %v", err)
	}
	k, err := ParseWebhookKeys(v)
	if err != nil {
		t.Fatalf("parse webhook keys: %v", err)
	}
	return k
}

func codeOf(err error) Code {
	var f *Failure
	if errors.As(err, &f) {
		return f.Code
	}
	return ""
}

func TestConnectOutcomes(t *testing.T) {
	verified := testNow
	tests := []struct {
		name      string
		token     string
		wantCode  Code
		wantState State
		wantMiss  []string
	}{
		{name: "connected", token: goodToken, wantState: StateConnected},
		{name: "without write_builds", token: readOnly, wantState: StateConnected},
		{name: "padded with spaces", token: "  " + goodToken + "\n", wantState: StateConnected},
		{name: "empty", token: "", wantCode: CodeMalformedRequest, wantState: StateNotConnected},
		{name: "inner space", token: "bkua_1 2", wantCode: CodeMalformedRequest, wantState: StateNotConnected},
		{name: "too long", token: "bkua_" + strings.Repeat("a", 600), wantCode: CodeMalformedRequest, wantState: StateNotConnected},
		{name: "cluster token", token: "bkct_abc", wantCode: CodeWrongTokenType, wantState: StateFailed},
		{name: "agent access token", token: "bkaa_abc", wantCode: CodeWrongTokenType, wantState: StateFailed},
		{name: "agent job token", token: "bkaj_abc", wantCode: CodeWrongTokenType, wantState: StateFailed},
		{name: "unknown token", token: "bkua_unknown", wantCode: CodeInvalidToken, wantState: StateFailed},
		{name: "expired by date", token: expired, wantCode: CodeExpiredToken, wantState: StateFailed},
		{name: "expired says Buildkite", token: expiredSays, wantCode: CodeExpiredToken, wantState: StateFailed},
		{name: "missing scopes", token: fewScopes, wantCode: CodeMissingScopes, wantState: StateFailed,
			wantMiss: []string{"read_teams", "read_artifacts", "read_job_env", "read_build_logs", "read_organizations", "read_pipelines", "read_suites"}},
		{name: "no organizations", token: noOrgs, wantCode: CodeNoOrganizationAccess, wantState: StateFailed},
		{name: "organizations forbidden", token: forbidOrgs, wantCode: CodeNoOrganizationAccess, wantState: StateFailed},
		{name: "rate limited", token: limited, wantCode: CodeRateLimited, wantState: StateFailed},
		{name: "unreachable", token: down, wantCode: CodeUnreachable, wantState: StateFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness()
			rec, err := h.svc.Connect(context.Background(), "t1", tt.token)
			if got := codeOf(err); got != tt.wantCode {
				t.Fatalf("Connect code = %q, want %q (err %v)", got, tt.wantCode, err)
			}
			if rec.State != tt.wantState {
				t.Errorf("state = %q, want %q", rec.State, tt.wantState)
			}
			if tt.wantMiss != nil {
				var f *Failure
				errors.As(err, &f)
				if diff := cmp.Diff(tt.wantMiss, f.MissingScopes); diff != "" {
					t.Errorf("missing scopes (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantMiss, rec.MissingScopes); diff != "" {
					t.Errorf("record missing scopes (-want +got):\n%s", diff)
				}
			}
			if tt.wantCode == "" {
				if rec.VerifiedAt == nil || !rec.VerifiedAt.Equal(verified) {
					t.Errorf("verified_at = %v, want %v", rec.VerifiedAt, verified)
				}
				stored, _ := h.secrets.GetSecret(context.Background(), TokenSecretName("kitefix/", "t1"))
				if stored != strings.TrimSpace(tt.token) {
					t.Errorf("stored token differs from the one connected")
				}
			} else if rec.State == StateFailed && (rec.Error == nil || rec.Error.Code != tt.wantCode) {
				t.Errorf("record error = %+v, want code %q", rec.Error, tt.wantCode)
			}
			assertNoSecrets(t, h, rec, err, tt.token)
		})
	}
}

func TestConnectRecord(t *testing.T) {
	h := newHarness()
	got, err := h.svc.Connect(context.Background(), "t1", goodToken)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if got.Webhook == nil || len(got.Webhook.Secret) != 64 {
		t.Fatalf("webhook = %+v, want a new 64-hex secret", got.Webhook)
	}
	secret := got.Webhook.Secret
	if !strings.HasPrefix(got.Webhook.URL, "https://hooks.example.com/hooks/") || len(got.Webhook.ID) != 32 {
		t.Errorf("webhook url = %q id = %q", got.Webhook.URL, got.Webhook.ID)
	}
	now := testNow
	want := Record{
		State: StateConnected,
		Token: &TokenInfo{UUID: "uuid-good", Description: "kitefix", Scopes: allScopes, CreatedAt: created,
			User: User{Name: "Ada", Email: "ada@example.com"}},
		Organizations:         []Organization{{Slug: "acme", Name: "Acme"}},
		MissingScopes:         []string{},
		OptionalScopesMissing: []string{},
		Capabilities:          Capabilities{Annotate: true, Retry: true},
		Webhook:               got.Webhook,
		VerifiedAt:            &now,
		Tenant:                "t1",
		Version:               1,
		UpdatedAt:             testNow,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	if tenant, err := h.records.WebhookTenant(context.Background(), got.Webhook.ID); err != nil || tenant != "t1" {
		t.Errorf("webhook route = %q, %v; want t1", tenant, err)
	}
	if keys := h.webhookKeys(t, "t1"); keys.Current != secret || keys.Previous != "" {
		t.Errorf("stored webhook keys are not the one secret returned")
	}
	// The secret is shown once: a later status has none.
	st, err := h.svc.Status(context.Background(), "t1")
	if err != nil || st.Webhook == nil || st.Webhook.Secret != "" || st.Webhook.URL != got.Webhook.URL {
		t.Errorf("status webhook = %+v, %v; want the URL without a secret", st.Webhook, err)
	}
	// Reconnecting keeps the webhook and shows no secret.
	again, err := h.svc.Connect(context.Background(), "t1", otherToken)
	if err != nil || again.Webhook.URL != got.Webhook.URL || again.Webhook.Secret != "" || again.Token.UUID != "uuid-other" {
		t.Errorf("reconnect = %+v, %v", again, err)
	}
}

func TestFailedReconnectKeepsConnection(t *testing.T) {
	for _, bad := range []string{"bkct_abc", "bkua_unknown", fewScopes, expired, noOrgs, limited, down} {
		t.Run(bad[:8], func(t *testing.T) {
			h := newHarness()
			ctx := context.Background()
			before, err := h.svc.Connect(ctx, "t1", goodToken)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			rec, err := h.svc.Connect(ctx, "t1", bad)
			if err == nil {
				t.Fatal("Connect with a bad token succeeded")
			}
			if rec.State != StateConnected || rec.Error != nil {
				t.Errorf("state = %q error = %+v, want connected without error", rec.State, rec.Error)
			}
			if rec.LastAttempt == nil || rec.LastAttempt.Error == nil || rec.LastAttempt.Error.Code != codeOf(err) {
				t.Errorf("last_attempt = %+v, want the failure %q", rec.LastAttempt, codeOf(err))
			}
			if diff := cmp.Diff(before.Token, rec.Token); diff != "" {
				t.Errorf("token info changed (-before +after):\n%s", diff)
			}
			stored, _ := h.secrets.GetSecret(ctx, TokenSecretName("kitefix/", "t1"))
			if stored != goodToken {
				t.Errorf("stored token was replaced")
			}
			// The working token still verifies, and a success clears last_attempt.
			v, err := h.svc.Verify(ctx, "t1")
			if err != nil || v.State != StateConnected || v.LastAttempt != nil {
				t.Errorf("Verify = %q %+v, %v", v.State, v.LastAttempt, err)
			}
		})
	}
}

func TestVerifyStoredToken(t *testing.T) {
	tests := []struct {
		name      string
		change    func(*fakeBuildkite)
		wantCode  Code
		wantState State
	}{
		{name: "still good", change: func(*fakeBuildkite) {}, wantState: StateConnected},
		{name: "revoked", change: func(f *fakeBuildkite) { delete(f.tokens, goodToken) }, wantCode: CodeInvalidToken, wantState: StateFailed},
		{name: "expired", change: func(f *fakeBuildkite) { f.tokens[goodToken] = f.tokens[expiredSays] }, wantCode: CodeExpiredToken, wantState: StateFailed},
		{name: "scopes removed", change: func(f *fakeBuildkite) { f.tokens[goodToken] = f.tokens[fewScopes] }, wantCode: CodeMissingScopes, wantState: StateFailed},
		{name: "rate limited", change: func(f *fakeBuildkite) { f.tokens[goodToken] = f.tokens[limited] }, wantCode: CodeRateLimited, wantState: StateConnected},
		{name: "unreachable", change: func(f *fakeBuildkite) { f.tokens[goodToken] = f.tokens[down] }, wantCode: CodeUnreachable, wantState: StateConnected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness()
			ctx := context.Background()
			if _, err := h.svc.Connect(ctx, "t1", goodToken); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			tt.change(h.bk)
			rec, err := h.svc.Verify(ctx, "t1")
			if got := codeOf(err); got != tt.wantCode {
				t.Fatalf("Verify code = %q, want %q (%v)", got, tt.wantCode, err)
			}
			if rec.State != tt.wantState {
				t.Errorf("state = %q, want %q", rec.State, tt.wantState)
			}
			if tt.wantState == StateFailed && (rec.Capabilities != Capabilities{}) {
				t.Errorf("failed connection keeps capabilities %+v", rec.Capabilities)
			}
			assertNoSecrets(t, h, rec, err, goodToken)
		})
	}
}

func TestLifecycleWithoutConnection(t *testing.T) {
	h := newHarness()
	ctx := context.Background()
	st, err := h.svc.Status(ctx, "nobody")
	if err != nil || st.State != StateNotConnected {
		t.Fatalf("Status = %q, %v", st.State, err)
	}
	if _, err := h.svc.Verify(ctx, "nobody"); codeOf(err) != CodeNotConnected {
		t.Errorf("Verify code = %q, want not_connected", codeOf(err))
	}
	if _, err := h.svc.RotateWebhookSecret(ctx, "nobody"); codeOf(err) != CodeNotConnected {
		t.Errorf("Rotate code = %q, want not_connected", codeOf(err))
	}
	rec, err := h.svc.Disconnect(ctx, "nobody")
	if err != nil || rec.State != StateDisconnected {
		t.Errorf("Disconnect = %q, %v", rec.State, err)
	}
}

func TestRotateAndDisconnect(t *testing.T) {
	h := newHarness()
	ctx := context.Background()
	first, err := h.svc.Connect(ctx, "t1", goodToken)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	rot, err := h.svc.RotateWebhookSecret(ctx, "t1")
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if rot.Webhook.Secret == "" || rot.Webhook.Secret == first.Webhook.Secret || rot.Webhook.URL != first.Webhook.URL {
		t.Errorf("rotated webhook = %+v; want a new secret, same URL", rot.Webhook)
	}
	keys := h.webhookKeys(t, "t1")
	if keys.Current != rot.Webhook.Secret || keys.Previous != first.Webhook.Secret || !keys.PreviousUntil.Equal(testNow.Add(RotationGrace)) {
		t.Errorf("stored keys after rotation: want the rotated secret current and the first one previous until %s, got previous until %s", testNow.Add(RotationGrace), keys.PreviousUntil)
	}

	// A second rotation right after the first is refused: it would push
	// the first rotation's secret out before anyone could use it.
	if _, err := h.svc.RotateWebhookSecret(ctx, "t1"); codeOf(err) != CodeConflict {
		t.Errorf("second rotation within the cooldown: code %q, want conflict", codeOf(err))
	}
	if got := h.webhookKeys(t, "t1"); got != keys {
		t.Errorf("a refused rotation changed the stored keys")
	}
	h.advance(RotateCooldown)
	again, err := h.svc.RotateWebhookSecret(ctx, "t1")
	if err != nil {
		t.Fatalf("rotation after the cooldown: %v", err)
	}
	if got := h.webhookKeys(t, "t1"); got.Current != again.Webhook.Secret || got.Previous != rot.Webhook.Secret {
		t.Errorf("stored keys after the second rotation: want the newest current and the first rotation's previous")
	}

	rec, err := h.svc.Disconnect(ctx, "t1")
	if err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	want := Record{State: StateDisconnected, Organizations: []Organization{}, MissingScopes: []string{}, OptionalScopesMissing: []string{}}
	if diff := cmp.Diff(want, rec, cmpopts.IgnoreFields(Record{}, "Tenant", "Version", "UpdatedAt")); diff != "" {
		t.Errorf("disconnected record (-want +got):\n%s", diff)
	}
	if len(h.secrets.values) != 0 {
		t.Errorf("secrets left after disconnect: %d", len(h.secrets.values))
	}
	if _, err := h.records.WebhookTenant(ctx, first.Webhook.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("webhook route after disconnect: %v, want not found", err)
	}
	if len(h.records.leases) != 0 {
		t.Errorf("leases left after the calls: %d", len(h.records.leases))
	}
}

func TestStorageFailures(t *testing.T) {
	boom := errors.New("connection reset")
	ctx := context.Background()
	t.Run("secret write fails on connect", func(t *testing.T) {
		h := newHarness()
		h.secrets.failPut = boom
		rec, err := h.svc.Connect(ctx, "t1", goodToken)
		if codeOf(err) != CodeStorageUnavailable || rec.State != StateNotConnected {
			t.Errorf("Connect = %q, %v; want storage_unavailable, not_connected", rec.State, err)
		}
	})
	t.Run("record write fails on reconnect", func(t *testing.T) {
		h := newHarness()
		if _, err := h.svc.Connect(ctx, "t1", goodToken); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		h.records.failPut = boom
		rec, err := h.svc.Connect(ctx, "t1", "bkua_unknown")
		if codeOf(err) != CodeStorageUnavailable || rec.State != StateConnected {
			t.Errorf("Connect = %q, %v; want storage_unavailable and the connection as it was", rec.State, err)
		}
	})
	t.Run("records unreadable", func(t *testing.T) {
		h := newHarness()
		h.records.failGet = boom
		if _, err := h.svc.Status(ctx, "t1"); !errors.Is(err, boom) {
			t.Errorf("Status err = %v, want the cause", err)
		}
		if _, err := h.svc.Verify(ctx, "t1"); codeOf(err) != CodeStorageUnavailable {
			t.Errorf("Verify code = %q, want storage_unavailable", codeOf(err))
		}
	})
}

func TestLostRaceIsConflict(t *testing.T) {
	h := newHarness()
	ctx := context.Background()
	if _, err := h.svc.Connect(ctx, "t1", goodToken); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	before, _ := h.records.GetConnection(ctx, "t1")
	// Another writer moves the version under the service once, as one
	// that overtook an expired lease would.
	racy := &racyRecords{memRecords: h.records}
	h.svc.records = racy
	rec, err := h.svc.Verify(ctx, "t1")
	if codeOf(err) != CodeConflict {
		t.Fatalf("Verify after a lost race: code %q (%v), want conflict", codeOf(err), err)
	}
	if racy.bumped != 1 || rec.State != StateConnected {
		t.Errorf("bumped = %d, state %q; want one lost race and the record as stored", racy.bumped, rec.State)
	}
	after, _ := h.records.GetConnection(ctx, "t1")
	if after.Version != before.Version+1 || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("record after the lost race: version %d (want %d, only the other writer's bump)", after.Version, before.Version+1)
	}
}

type racyRecords struct {
	*memRecords
	bumped int
}

func (r *racyRecords) PutConnection(ctx context.Context, rec Record) error {
	if r.bumped == 0 {
		r.bumped++
		r.mu.Lock()
		cur := r.recs[rec.Tenant]
		cur.Version++
		r.recs[rec.Tenant] = cur
		r.mu.Unlock()
	}
	return r.memRecords.PutConnection(ctx, rec)
}

func TestSecretNames(t *testing.T) {
	digest := func(tenant string) string {
		sum := sha256.Sum256([]byte(tenant))
		return "t-" + hex.EncodeToString(sum[:16])
	}
	tests := []struct{ tenant, want string }{
		{"acme", "kitefix/" + digest("acme") + "/buildkite-api-token"},
		{"auth0|123", "kitefix/" + digest("auth0|123") + "/buildkite-api-token"},
		{"../x", "kitefix/" + digest("../x") + "/buildkite-api-token"},
	}
	for _, tt := range tests {
		if got := TokenSecretName("kitefix/", tt.tenant); got != tt.want {
			t.Errorf("TokenSecretName(%q) = %q, want %q", tt.tenant, got, tt.want)
		}
	}
	if got, want := WebhookSecretName("kitefix/", "acme"), "kitefix/"+digest("acme")+"/webhook-secret"; got != want {
		t.Errorf("WebhookSecretName(acme) = %q, want %q", got, want)
	}
}

// TestSecretNamesInjective checks that no tenant id reaches another
// tenant's secrets, including an id spelled like another's digest.
func TestSecretNamesInjective(t *testing.T) {
	victim := "acme"
	tenants := []string{
		victim, "ACME", "acme ", " acme", "acme/", "acme/x", "x/acme", "a",
		"t-" + strings.TrimPrefix(strings.Split(TokenSecretName("", victim), "/")[0], "t-"), // the victim's component, as a tenant id
		strings.Split(TokenSecretName("", victim), "/")[0] + "/buildkite-api-token",
		strings.Split(TokenSecretName("", "t-x"), "/")[0],
		"auth0|123", "auth0|124", "org_1.eu@x", "é", "e\u0301",
	}
	if tenants[8] != secretComponent(victim) {
		t.Fatalf("attack tenant %q is not the victim's component %q", tenants[8], secretComponent(victim))
	}
	owner := map[string]string{}
	for _, tenant := range tenants {
		for _, name := range []string{TokenSecretName("kitefix/", tenant), WebhookSecretName("kitefix/", tenant)} {
			if other, ok := owner[name]; ok {
				t.Errorf("tenants %q and %q share the secret name %q", other, tenant, name)
			}
			owner[name] = tenant
			if strings.Count(name, "/") != 2 || !strings.HasPrefix(name, "kitefix/t-") {
				t.Errorf("name %q for tenant %q: want kitefix/t-<digest>/<kind>", name, tenant)
			}
		}
	}
}

func TestValidTenant(t *testing.T) {
	for tenant, want := range map[string]bool{
		"acme": true, "auth0|123": true, "": false, "a\nb": false, strings.Repeat("x", 300): false, "\xff": false,
	} {
		if got := ValidTenant(tenant); got != want {
			t.Errorf("ValidTenant(%q) = %v, want %v", tenant, got, want)
		}
	}
}

// assertNoSecrets checks that no token or webhook secret shows in the
// record JSON, the error or the logs.
func assertNoSecrets(t *testing.T, h *harness, rec Record, err error, token string) {
	t.Helper()
	token = strings.TrimSpace(token)
	if len(token) < 8 {
		return
	}
	rec.Webhook = nil // the one place a new webhook secret may show
	b, _ := json.Marshal(rec)
	for what, text := range map[string]string{"record": string(b), "logs": h.logs.String()} {
		if strings.Contains(text, token) {
			t.Errorf("token appears in the %s", what)
		}
	}
	if err != nil && strings.Contains(err.Error(), token) {
		t.Error("token appears in the error")
	}
	for _, s := range h.secrets.values {
		if strings.Contains(h.logs.String(), s) || (err != nil && strings.Contains(err.Error(), s)) {
			t.Error("a stored secret appears in the logs or the error")
		}
	}
}

// A connection made while webhooks arrived at one address shows the
// address they arrive at now: `kitefix serve` restarted on another port or
// behind a tunnel must not keep showing the old URL.
func TestWebhookURLFollowsBaseURL(t *testing.T) {
	t.Parallel()
	h := newHarness()
	ctx := context.Background()
	rec, err := h.svc.Connect(ctx, "acme", goodToken)
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Webhook.ID
	if want := "https://hooks.example.com/hooks/" + id; rec.Webhook.URL != want {
		t.Fatalf("webhook URL %q, want %q", rec.Webhook.URL, want)
	}
	moved := NewService(Config{
		Records: h.records, Secrets: h.secrets, Buildkite: h.bk.client,
		WebhookBaseURL: "https://tunnel.example.net",
		Now:            func() time.Time { return testNow },
	})
	want := "https://tunnel.example.net/hooks/" + id
	got, err := moved.Status(ctx, "acme")
	if err != nil || got.Webhook == nil || got.Webhook.URL != want {
		t.Fatalf("status after the base URL moved: %+v, %v; want webhook URL %q", got.Webhook, err, want)
	}
	rot, err := moved.RotateWebhookSecret(ctx, "acme")
	if err != nil || rot.Webhook.URL != want {
		t.Errorf("rotate after the base URL moved: %+v, %v; want webhook URL %q", rot.Webhook, err, want)
	}
}

// loggedRecords is memRecords with a delivery log.
type loggedRecords struct {
	*memRecords
	mu   sync.Mutex
	last map[string]time.Time
}

func (l *loggedRecords) LastDelivery(_ context.Context, tenant string) (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[tenant], nil
}

func (l *loggedRecords) ForgetLastDelivery(_ context.Context, tenant string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.last, tenant)
	return nil
}

// The webhook a connect makes after a disconnect has delivered nothing: its
// status must not show the deliveries of the one before.
func TestReconnectForgetsLastDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness()
	records := &loggedRecords{memRecords: h.records, last: map[string]time.Time{}}
	svc := NewService(Config{
		Records: records, Secrets: h.secrets, Buildkite: h.bk.client,
		WebhookBaseURL: "https://hooks.example.com", Now: func() time.Time { return testNow },
	})
	ctx := context.Background()
	if _, err := svc.Connect(ctx, "acme", goodToken); err != nil {
		t.Fatal(err)
	}
	records.last["acme"] = testNow.Add(-time.Minute)
	if st, err := svc.Status(ctx, "acme"); err != nil || st.Webhook == nil || st.Webhook.LastDeliveryAt == nil {
		t.Fatalf("status with a delivery: %+v, %v; want last_delivery_at", st.Webhook, err)
	}
	if _, err := svc.Disconnect(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	rec, err := svc.Connect(ctx, "acme", goodToken)
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.Status(ctx, "acme")
	if err != nil || st.Webhook == nil || st.Webhook.ID != rec.Webhook.ID {
		t.Fatalf("status after reconnecting: %+v, %v", st.Webhook, err)
	}
	if st.Webhook.LastDeliveryAt != nil {
		t.Errorf("the new webhook shows a delivery at %v, which went to the webhook before it", st.Webhook.LastDeliveryAt)
	}
}
