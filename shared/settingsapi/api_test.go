package settingsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/settingsapi"
)

var required = connection.RequiredScopes

func withWrite() []string { return append(append([]string{}, required...), "write_builds") }

const (
	good     = "bkua_0123456789abcdef0123456789abcdef01234567"
	readOnly = "bkua_1123456789abcdef0123456789abcdef01234567"
	few      = "bkua_2123456789abcdef0123456789abcdef01234567"
	expired  = "bkua_3123456789abcdef0123456789abcdef01234567"
	says     = "bkua_4123456789abcdef0123456789abcdef01234567"
	noOrgs   = "bkua_5123456789abcdef0123456789abcdef01234567"
	limited  = "bkua_6123456789abcdef0123456789abcdef01234567"
	broken   = "bkua_7123456789abcdef0123456789abcdef01234567"
	hangs    = "bkua_8123456789abcdef0123456789abcdef01234567"
	revoked  = "bkua_9123456789abcdef0123456789abcdef01234567"
	orgs403  = "bkua_a123456789abcdef0123456789abcdef01234567"
)

type env struct {
	t     *testing.T
	api   http.Handler
	bk    *bkfake.Server
	store *localstore.Store
	logs  *bytes.Buffer
	seen  []string // every response body
}

func newEnv(t *testing.T) *env {
	t.Helper()
	bk := bkfake.New(t)
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	bk.Add(good, bkfake.Token{Scopes: withWrite()})
	bk.Add(readOnly, bkfake.Token{Scopes: required, Orgs: []string{"acme"}})
	bk.Add(few, bkfake.Token{Scopes: []string{"read_builds", "read_build_logs"}})
	bk.Add(expired, bkfake.Token{Scopes: withWrite(), ExpiresAt: &past})
	bk.Add(says, bkfake.Token{AccessTokenStatus: 401, Message: "Your API access token has expired"})
	bk.Add(noOrgs, bkfake.Token{Scopes: withWrite(), Orgs: []string{}})
	bk.Add(orgs403, bkfake.Token{Scopes: withWrite(), OrganizationsStatus: 403})
	bk.Add(limited, bkfake.Token{AccessTokenStatus: 429, RateLimitReset: 120})
	bk.Add(broken, bkfake.Token{AccessTokenStatus: 502})
	bk.Add(hangs, bkfake.Token{Hang: true})
	store, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := connection.NewService(connection.Config{
		Records: store, Secrets: store,
		Buildkite: func(token string) connection.Buildkite {
			return buildkite.New(token,
				buildkite.WithBaseURL(bk.URL),
				buildkite.WithTimeout(300*time.Millisecond),
				buildkite.WithMaxRetries(1),
				buildkite.WithBackoff(time.Millisecond, time.Millisecond),
				buildkite.WithMaxRateLimitWait(0),
				buildkite.WithLimiter(nil),
				buildkite.WithLogger(log))
		},
		WebhookBaseURL: "https://hooks.example.com",
		Logger:         log,
	})
	return &env{t: t, api: settingsapi.New(svc, log), bk: bk, store: store, logs: logs}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request as tenant ("" for none).
func (e *env) do(tenant, method, path, body string) response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if tenant != "" {
		req = req.WithContext(settingsapi.WithTenant(req.Context(), tenant))
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	r := response{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	e.seen = append(e.seen, r.raw)
	if err := json.Unmarshal(rec.Body.Bytes(), &r.body); err != nil {
		e.t.Fatalf("%s %s: body is not JSON: %q", method, path, r.raw)
	}
	return r
}

func (e *env) connect(token string) response {
	e.t.Helper()
	b, _ := json.Marshal(map[string]string{"token": token})
	return e.do("acme-tenant", http.MethodPut, "/v1/integrations/buildkite", string(b))
}

func errCode(r response) string {
	m, _ := r.body["error"].(map[string]any)
	s, _ := m["code"].(string)
	return s
}

func TestConnectErrors(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
		wantState  string
	}{
		{"connected", `{"token":"` + good + `"}`, 200, "", "connected"},
		{"malformed JSON", `{"token":`, 400, "malformed_request", "not_connected"},
		{"empty body", ``, 400, "malformed_request", "not_connected"},
		{"no token field", `{"tok":"x"}`, 400, "malformed_request", "not_connected"},
		{"token not a string", `{"token":42}`, 400, "malformed_request", "not_connected"},
		{"two JSON values", `{"token":"a"}{"token":"b"}`, 400, "malformed_request", "not_connected"},
		{"oversized body", `{"token":"` + strings.Repeat("a", 20<<10) + `"}`, 400, "malformed_request", "not_connected"},
		{"cluster token", `{"token":"bkct_0123456789abcdef"}`, 422, "wrong_token_type", "failed"},
		{"agent token", `{"token":"bkaa_0123456789abcdef"}`, 422, "wrong_token_type", "failed"},
		{"job token", `{"token":"bkaj_0123456789abcdef"}`, 422, "wrong_token_type", "failed"},
		{"invalid token", `{"token":"` + revoked + `"}`, 422, "invalid_token", "failed"},
		{"expired by date", `{"token":"` + expired + `"}`, 422, "expired_token", "failed"},
		{"expired says Buildkite", `{"token":"` + says + `"}`, 422, "expired_token", "failed"},
		{"missing scopes", `{"token":"` + few + `"}`, 422, "missing_scopes", "failed"},
		{"no organizations", `{"token":"` + noOrgs + `"}`, 422, "no_organization_access", "failed"},
		{"organizations forbidden", `{"token":"` + orgs403 + `"}`, 422, "no_organization_access", "failed"},
		{"rate limited", `{"token":"` + limited + `"}`, 429, "buildkite_rate_limited", "failed"},
		{"Buildkite 5xx", `{"token":"` + broken + `"}`, 502, "buildkite_unreachable", "failed"},
		{"Buildkite times out", `{"token":"` + hangs + `"}`, 502, "buildkite_unreachable", "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got := e.do("acme-tenant", http.MethodPut, "/v1/integrations/buildkite", tt.body)
			if got.status != tt.wantStatus || errCode(got) != tt.wantCode || got.body["state"] != tt.wantState {
				t.Errorf("got %d %q state %v, want %d %q state %s\nbody: %s",
					got.status, errCode(got), got.body["state"], tt.wantStatus, tt.wantCode, tt.wantState, got.raw)
			}
			if tt.wantCode != "" {
				msg, _ := got.body["error"].(map[string]any)["message"].(string)
				if len(msg) < 20 {
					t.Errorf("error message %q does not say what to do", msg)
				}
			}
			e.assertNoTokens()
		})
	}
}

func TestMissingScopesListed(t *testing.T) {
	e := newEnv(t)
	got := e.connect(few)
	want := []any{"read_teams", "read_artifacts", "read_job_env", "read_organizations", "read_pipelines", "read_user", "read_suites"}
	if diff := cmp.Diff(want, got.body["missing_scopes"]); diff != "" {
		t.Errorf("missing_scopes (-want +got):\n%s", diff)
	}
}

func TestRateLimitRetryAfter(t *testing.T) {
	e := newEnv(t)
	got := e.connect(limited)
	if ra := got.header.Get("Retry-After"); ra != "120" {
		t.Errorf("Retry-After = %q, want 120", ra)
	}
}

func TestMissingTenant(t *testing.T) {
	e := newEnv(t)
	for _, route := range [][2]string{
		{"GET", "/v1/integrations/buildkite"}, {"PUT", "/v1/integrations/buildkite"},
		{"DELETE", "/v1/integrations/buildkite"}, {"POST", "/v1/integrations/buildkite/verify"},
		{"POST", "/v1/integrations/buildkite/webhook-secret"},
	} {
		got := e.do("", route[0], route[1], `{"token":"`+good+`"}`)
		if got.status != 401 || errCode(got) != "unauthorized" {
			t.Errorf("%s %s without tenant = %d %q, want 401 unauthorized", route[0], route[1], got.status, errCode(got))
		}
	}
	if calls := e.bk.Calls(); len(calls) != 0 {
		t.Errorf("Buildkite was called without a tenant: %v", calls)
	}
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	const path = "/v1/integrations/buildkite"

	st := e.do("acme-tenant", "GET", path, "")
	wantEmpty := map[string]any{
		"state": "not_connected", "organizations": []any{}, "missing_scopes": []any{},
		"optional_scopes_missing": []any{}, "capabilities": map[string]any{"annotate": false, "retry": false},
	}
	if diff := cmp.Diff(wantEmpty, st.body); diff != "" {
		t.Errorf("status before connecting (-want +got):\n%s", diff)
	}

	c := e.connect(readOnly)
	if c.status != 200 || c.body["state"] != "connected" {
		t.Fatalf("connect = %d %s", c.status, c.raw)
	}
	if diff := cmp.Diff([]any{"write_builds"}, c.body["optional_scopes_missing"]); diff != "" {
		t.Errorf("optional_scopes_missing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{map[string]any{"slug": "acme", "name": "Acme"}}, c.body["organizations"]); diff != "" {
		t.Errorf("organizations (-want +got):\n%s", diff)
	}
	tok := c.body["token"].(map[string]any)
	if tok["created_at"] != "2025-07-16T06:07:42Z" || tok["expires_at"] != nil || tok["uuid"] == "" {
		t.Errorf("token = %v; want RFC 3339 created_at and null expires_at", tok)
	}
	hook := c.body["webhook"].(map[string]any)
	secret, _ := hook["secret"].(string)
	url, _ := hook["url"].(string)
	if len(secret) != 64 || !strings.HasPrefix(url, "https://hooks.example.com/hooks/") {
		t.Errorf("webhook = %v", hook)
	}

	st = e.do("acme-tenant", "GET", path, "")
	if h := st.body["webhook"].(map[string]any); h["secret"] != nil || h["url"] != url {
		t.Errorf("status webhook = %v; want the URL and no secret", h)
	}

	// Upgrading to a token with write_builds turns on annotate and retry.
	up := e.connect(good)
	if diff := cmp.Diff(map[string]any{"annotate": true, "retry": true}, up.body["capabilities"]); diff != "" {
		t.Errorf("capabilities (-want +got):\n%s", diff)
	}

	// A failed re-connect leaves the working connection as it was.
	bad := e.connect(revoked)
	if bad.status != 422 || bad.body["state"] != "connected" || errCode(bad) != "invalid_token" {
		t.Errorf("failed reconnect = %d %s", bad.status, bad.raw)
	}
	la, _ := bad.body["last_attempt"].(map[string]any)
	if la == nil || la["error"].(map[string]any)["code"] != "invalid_token" {
		t.Errorf("last_attempt = %v", la)
	}
	st = e.do("acme-tenant", "GET", path, "")
	if st.body["state"] != "connected" || st.body["error"] != nil || st.body["last_attempt"] == nil {
		t.Errorf("status after failed reconnect = %s", st.raw)
	}

	v := e.do("acme-tenant", "POST", path+"/verify", "")
	if v.status != 200 || v.body["state"] != "connected" || v.body["last_attempt"] != nil {
		t.Errorf("verify = %d %s", v.status, v.raw)
	}

	rot := e.do("acme-tenant", "POST", path+"/webhook-secret", "")
	newSecret, _ := rot.body["webhook"].(map[string]any)["secret"].(string)
	if rot.status != 200 || len(newSecret) != 64 || newSecret == secret {
		t.Errorf("rotate = %d %s", rot.status, rot.raw)
	}

	// Buildkite revokes the stored token: re-verify moves to failed.
	e.bk.Add(good, bkfake.Token{AccessTokenStatus: 401})
	v = e.do("acme-tenant", "POST", path+"/verify", "")
	if v.status != 422 || v.body["state"] != "failed" || errCode(v) != "invalid_token" {
		t.Errorf("verify of a revoked token = %d %s", v.status, v.raw)
	}

	d := e.do("acme-tenant", "DELETE", path, "")
	if d.status != 200 || d.body["state"] != "disconnected" || d.body["webhook"] != nil || d.body["token"] != nil {
		t.Errorf("disconnect = %d %s", d.status, d.raw)
	}
	for _, name := range []string{connection.TokenSecretName("kitefix/", "acme-tenant"), connection.WebhookSecretName("kitefix/", "acme-tenant")} {
		if _, err := e.store.GetSecret(context.Background(), name); err == nil {
			t.Errorf("secret %s still stored after disconnect", name)
		}
	}
	v = e.do("acme-tenant", "POST", path+"/verify", "")
	if v.status != 409 || errCode(v) != "not_connected" {
		t.Errorf("verify after disconnect = %d %s", v.status, v.raw)
	}
	e.assertNoTokens()
}

func TestTenantsAreSeparate(t *testing.T) {
	e := newEnv(t)
	if c := e.connect(good); c.status != 200 {
		t.Fatalf("connect = %s", c.raw)
	}
	other := e.do("other-tenant", "GET", "/v1/integrations/buildkite", "")
	if other.body["state"] != "not_connected" {
		t.Errorf("another tenant sees %s", other.raw)
	}
}

func TestStorageUnavailable(t *testing.T) {
	e := newEnv(t)
	if c := e.connect(good); c.status != 200 {
		t.Fatalf("connect = %s", c.raw)
	}
	e.store.Close()
	for _, route := range [][2]string{{"GET", ""}, {"POST", "/verify"}, {"DELETE", ""}, {"POST", "/webhook-secret"}} {
		got := e.do("acme-tenant", route[0], "/v1/integrations/buildkite"+route[1], "")
		if got.status != 503 || errCode(got) != "storage_unavailable" {
			t.Errorf("%s %s with storage down = %d %s", route[0], route[1], got.status, got.raw)
		}
	}
	got := e.connect(good)
	if got.status != 503 || errCode(got) != "storage_unavailable" {
		t.Errorf("connect with storage down = %d %s", got.status, got.raw)
	}
}

func TestExtraRoute(t *testing.T) {
	e := newEnv(t)
	h := e.api.(*settingsapi.Handler)
	h.Handle("GET /v1/analyses", func(w http.ResponseWriter, r *http.Request, tenant string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"tenant":"`+tenant+`"}`)
	})
	if got := e.do("t9", "GET", "/v1/analyses?limit=5", ""); got.body["tenant"] != "t9" {
		t.Errorf("extra route = %s", got.raw)
	}
	if got := e.do("", "GET", "/v1/analyses", ""); got.status != 401 {
		t.Errorf("extra route without tenant = %d", got.status)
	}
}

// assertNoTokens checks no response or log line holds a token.
func (e *env) assertNoTokens() {
	e.t.Helper()
	all := strings.Join(e.seen, "\n") + e.logs.String()
	for _, tok := range []string{good, readOnly, few, expired, says, noOrgs, limited, broken, hangs, revoked, orgs403} {
		if strings.Contains(all, tok) {
			e.t.Errorf("token %s… appears in a response or log", tok[:8])
		}
	}
}
