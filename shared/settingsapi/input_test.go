package settingsapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/settingsapi"
)

// TestConnectRefusesBadInput: a body that is not exactly one JSON object in
// UTF-8, or a token with characters no token holds, is malformed_request
// before Buildkite is asked, and the working connection stays as it was.
func TestConnectRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"NUL in the token", `{"token":"` + good[:10] + `\u0000` + good[10:] + `"}`},
		{"newline inside the token", `{"token":"` + good[:10] + `\n` + good[10:] + `"}`},
		{"tab inside the token", `{"token":"` + good[:10] + `\t` + good[10:] + `"}`},
		{"DEL in the token", `{"token":"` + good + `\u007f"}`},
		{"escape sequence in the token", `{"token":"\u001b[31m` + good + `"}`},
		{"zero-width space in the token", `{"token":"` + good[:10] + `\u200b` + good[10:] + `"}`},
		{"byte order mark in the token", `{"token":"\ufeff` + good + `"}`},
		{"right-to-left override in the token", `{"token":"` + good + `\u202e"}`},
		{"non-breaking space in the token", `{"token":"` + good[:10] + `\u00a0` + good[10:] + `"}`},
		{"raw C1 control inside the token", `{"token":"` + good[:10] + "\u0085" + good[10:] + `"}`},
		{"invalid UTF-8 in the token", `{"token":"` + good + "\xff" + `"}`},
		{"invalid UTF-8 outside the token", `{"token":"` + good + `","x":"` + "\xc3\x28" + `"}`},
		{"truncated UTF-8 sequence", `{"token":"` + good + `"}` + "\xe2\x82"},
		{"trailing brace", `{"token":"` + good + `"}}`},
		{"trailing bracket", `{"token":"` + good + `"}]`},
		{"trailing word", `{"token":"` + good + `"} please`},
		{"trailing second object", `{"token":"` + good + `"} {}`},
		{"trailing comma", `{"token":"` + good + `"},`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.connect(readOnly)
			if before.status != http.StatusOK {
				t.Fatalf("connect = %d %s", before.status, before.raw)
			}
			calls := len(e.bk.Calls())

			got := e.do("acme-tenant", http.MethodPut, "/v1/integrations/buildkite", tt.body)
			if got.status != http.StatusBadRequest || errCode(got) != "malformed_request" {
				t.Errorf("got %d %q, want 400 malformed_request\nbody: %s", got.status, errCode(got), got.raw)
			}
			if got.body["state"] != "connected" {
				t.Errorf("state = %v, want the working connection's (connected)", got.body["state"])
			}
			if n := len(e.bk.Calls()); n != calls {
				t.Errorf("Buildkite was called %d times for a malformed request", n-calls)
			}
			after := e.do("acme-tenant", http.MethodGet, "/v1/integrations/buildkite", "")
			delete(before.body, "webhook") // the secret is shown only when created
			delete(after.body, "webhook")
			if diff := cmp.Diff(before.body, after.body); diff != "" {
				t.Errorf("the stored connection changed (-before +after):\n%s", diff)
			}
			e.assertNoTokens()
		})
	}
}

// TestConnectAcceptsSurroundingWhitespace: whitespace around the JSON
// object, and around the token (a paste), is not an error.
func TestConnectAcceptsSurroundingWhitespace(t *testing.T) {
	for _, body := range []string{
		" \r\n\t{\"token\":\"" + good + "\"} \r\n\t",
		`{"token":"  ` + good + "\\n\"}",
	} {
		e := newEnv(t)
		if got := e.do("acme-tenant", http.MethodPut, "/v1/integrations/buildkite", body); got.status != http.StatusOK {
			t.Errorf("PUT %q = %d %s, want 200", body, got.status, got.raw)
		}
	}
}

// TestNoRouteAnswersInErrorShape: unknown paths and methods get the API's
// JSON error shape, with or without a tenant, and never reach Buildkite.
func TestNoRouteAnswersInErrorShape(t *testing.T) {
	tests := []struct {
		name, tenant, method, path string
		wantStatus                 int
		wantCode, wantAllow        string
	}{
		{"unknown path", "acme-tenant", "GET", "/v1/nope", 404, "not_found", ""},
		{"unknown path, no tenant", "", "GET", "/v1/integrations/gitlab", 404, "not_found", ""},
		{"sub-path of a route", "acme-tenant", "PUT", "/v1/integrations/buildkite/extra", 404, "not_found", ""},
		{"PATCH the connection", "acme-tenant", "PATCH", "/v1/integrations/buildkite", 405, "method_not_allowed", "DELETE, GET, HEAD, PUT"},
		{"GET verify", "acme-tenant", "GET", "/v1/integrations/buildkite/verify", 405, "method_not_allowed", "POST"},
		{"DELETE the webhook secret, no tenant", "", "DELETE", "/v1/integrations/buildkite/webhook-secret", 405, "method_not_allowed", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got := e.do(tt.tenant, tt.method, tt.path, `{"token":"`+good+`"}`)
			if got.status != tt.wantStatus || errCode(got) != tt.wantCode {
				t.Errorf("got %d %q, want %d %q\nbody: %s", got.status, errCode(got), tt.wantStatus, tt.wantCode, got.raw)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if got.body["state"] == nil {
				t.Errorf("no state in %s", got.raw)
			}
			msg, _ := got.body["error"].(map[string]any)["message"].(string)
			if !strings.Contains(msg, tt.path) {
				t.Errorf("message %q does not name the path", msg)
			}
			if allow := got.header.Get("Allow"); allow != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", allow, tt.wantAllow)
			}
			if calls := e.bk.Calls(); len(calls) != 0 {
				t.Errorf("Buildkite was called: %v", calls)
			}
		})
	}
}

func TestBlankTenantUnauthorized(t *testing.T) {
	e := newEnv(t)
	for _, tenant := range []string{" ", "\t", "   \u3000"} {
		req := httptest.NewRequest(http.MethodPut, "/v1/integrations/buildkite", strings.NewReader(`{"token":"`+good+`"}`))
		req = req.WithContext(settingsapi.WithTenant(context.Background(), tenant))
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `"unauthorized"`) {
			t.Errorf("tenant %q: %d %s, want 401 unauthorized", tenant, rec.Code, rec.Body)
		}
	}
	if calls := e.bk.Calls(); len(calls) != 0 {
		t.Errorf("Buildkite was called for a blank tenant: %v", calls)
	}
}
