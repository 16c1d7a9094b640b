package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/connection"
)

// TestServeRefusesOtherSites: a page on another site cannot rotate the
// webhook secret (a cross-site text/plain POST, as a form or fetch sends it
// without a preflight), nor read the API through a rebound DNS name.
func TestServeRefusesOtherSites(t *testing.T) {
	bk := bkfake.New(t)
	bk.Add(serveToken, bkfake.Token{Scopes: connection.RequiredScopes})
	base, _ := startServe(t, t.TempDir(), bk.URL)
	if status, _, raw := call(t, "PUT", base+"/v1/integrations/buildkite", `{"token":"`+serveToken+`"}`); status != 200 {
		t.Fatalf("connect = %d %s", status, raw)
	}
	u, _ := url.Parse(base)
	tests := []struct {
		name       string
		method     string
		path       string
		host       string // "" for the server's own
		headers    map[string]string
		body       string
		wantStatus int
		wantCode   string
	}{
		{
			name: "cross-site text/plain POST rotates", method: "POST", path: "/v1/integrations/buildkite/webhook-secret",
			headers: map[string]string{"Origin": "https://attacker.example", "Content-Type": "text/plain"}, body: "{}",
			wantStatus: 403, wantCode: "forbidden",
		},
		{
			name: "cross-site DELETE", method: "DELETE", path: "/v1/integrations/buildkite",
			headers:    map[string]string{"Origin": "https://attacker.example"},
			wantStatus: 403, wantCode: "forbidden",
		},
		{
			name: "DNS rebinding reads the status", method: "GET", path: "/v1/integrations/buildkite",
			host: "rebound.attacker.example:" + u.Port(), wantStatus: 403, wantCode: "forbidden",
		},
		{
			name: "DNS rebinding rotates", method: "POST", path: "/v1/integrations/buildkite/webhook-secret",
			host:    "rebound.attacker.example:" + u.Port(),
			headers: map[string]string{"Origin": "http://rebound.attacker.example:" + u.Port(), "Content-Type": "application/json"}, body: "{}",
			wantStatus: 403, wantCode: "forbidden",
		},
		{
			name: "same-origin text/plain body", method: "PUT", path: "/v1/integrations/buildkite",
			headers: map[string]string{"Origin": base, "Content-Type": "text/plain"}, body: `{"token":"` + serveToken + `"}`,
			wantStatus: 415, wantCode: "unsupported_media_type",
		},
		{
			name: "the page itself rotates", method: "POST", path: "/v1/integrations/buildkite/webhook-secret",
			headers:    map[string]string{"Origin": base},
			wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || (tt.wantCode != "" && !strings.Contains(string(raw), `"code":"`+tt.wantCode+`"`)) {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, raw, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus != 200 && (strings.Contains(string(raw), `"secret"`) || strings.Contains(string(raw), "organizations")) {
				t.Errorf("a refused request got the connection back: %s", raw)
			}
		})
	}
	// The refused requests changed nothing: still connected.
	if status, body, raw := call(t, "GET", base+"/v1/integrations/buildkite", ""); status != 200 || body["state"] != "connected" {
		t.Errorf("status after refused requests = %d %s", status, raw)
	}
}
