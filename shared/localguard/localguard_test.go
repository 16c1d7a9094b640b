package localguard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type req struct {
	method, path, host, body string
	headers                  map[string]string
}

func TestGuard(t *testing.T) {
	t.Parallel()
	const loop = "127.0.0.1:8080"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		addr     string // default loop
		hookBase string
		req      req
		wantCode string // "" for passed through
	}{
		{name: "page at 127.0.0.1", req: req{method: "GET", path: "/", host: "127.0.0.1:8080"}},
		{name: "page at localhost", req: req{method: "GET", path: "/", host: "localhost:8080"}},
		{name: "page at LOCALHOST", req: req{method: "GET", path: "/", host: "LOCALHOST:8080"}},
		{name: "page at [::1]", req: req{method: "GET", path: "/", host: "[::1]:8080"}},
		{name: "status by curl", req: req{method: "GET", path: "/v1/integrations/buildkite", host: loop}},
		{name: "DNS rebinding: a foreign name", req: req{method: "GET", path: "/v1/integrations/buildkite", host: "attacker.example:8080"}, wantCode: "forbidden"},
		{name: "DNS rebinding: rotate", req: req{method: "POST", path: "/v1/integrations/buildkite/webhook-secret", host: "rebind.attacker.example:8080", headers: with("Origin", "http://rebind.attacker.example:8080")}, wantCode: "forbidden"},
		{name: "a name ending in localhost", req: req{method: "GET", path: "/", host: "evil.localhost.attacker.example:8080"}, wantCode: "forbidden"},
		{name: "another port", req: req{method: "GET", path: "/", host: "127.0.0.1:9999"}, wantCode: "forbidden"},
		{name: "no port", req: req{method: "GET", path: "/", host: "localhost"}, wantCode: "forbidden"},
		{name: "a LAN address while on loopback", req: req{method: "GET", path: "/", host: "192.168.1.5:8080"}, wantCode: "forbidden"},
		{name: "empty Host", req: req{method: "GET", path: "/", host: ""}, wantCode: "forbidden"},
		{name: "the page connects", req: req{method: "PUT", path: "/v1/integrations/buildkite", host: loop, body: `{"token":"x"}`, headers: with("Origin", "http://127.0.0.1:8080", "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin")}},
		{name: "the page at localhost rotates", req: req{method: "POST", path: "/v1/integrations/buildkite/webhook-secret", host: "localhost:8080", headers: with("Origin", "http://localhost:8080")}},
		{name: "curl connects", req: req{method: "PUT", path: "/v1/integrations/buildkite", host: loop, body: `{"token":"x"}`, headers: jsonCT}},
		{name: "JSON with a charset", req: req{method: "PUT", path: "/v1/integrations/buildkite", host: loop, body: `{}`, headers: with("Content-Type", "application/json; charset=utf-8")}},
		{name: "curl verifies without a body", req: req{method: "POST", path: "/v1/integrations/buildkite/verify", host: loop}},
		{name: "cross-site text/plain POST", req: req{method: "POST", path: "/v1/integrations/buildkite/webhook-secret", host: loop, body: `{}`, headers: with("Origin", "https://attacker.example", "Content-Type", "text/plain", "Sec-Fetch-Site", "cross-site")}, wantCode: "forbidden"},
		{name: "cross-site text/plain PUT", req: req{method: "PUT", path: "/v1/integrations/buildkite", host: loop, body: `{"token":"x"}`, headers: with("Origin", "https://attacker.example", "Content-Type", "text/plain")}, wantCode: "forbidden"},
		{name: "cross-site DELETE", req: req{method: "DELETE", path: "/v1/integrations/buildkite", host: loop, headers: with("Origin", "http://attacker.example")}, wantCode: "forbidden"},
		{name: "another local port's page", req: req{method: "DELETE", path: "/v1/integrations/buildkite", host: loop, headers: with("Origin", "http://127.0.0.1:3000")}, wantCode: "forbidden"},
		{name: "localhost page to 127.0.0.1", req: req{method: "DELETE", path: "/v1/integrations/buildkite", host: loop, headers: with("Origin", "http://localhost:8080")}, wantCode: "forbidden"},
		{name: "https origin", req: req{method: "DELETE", path: "/v1/integrations/buildkite", host: loop, headers: with("Origin", "https://127.0.0.1:8080")}, wantCode: "forbidden"},
		{name: "opaque origin", req: req{method: "DELETE", path: "/v1/integrations/buildkite", host: loop, headers: with("Origin", "null")}, wantCode: "forbidden"},
		{name: "cross-site without Origin", req: req{method: "DELETE", path: "/v1/integrations/buildkite", host: loop, headers: with("Sec-Fetch-Site", "cross-site")}, wantCode: "forbidden"},
		{name: "cross-site GET is only a read", req: req{method: "GET", path: "/v1/integrations/buildkite", host: loop, headers: with("Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site")}},
		{name: "same-origin text/plain body", req: req{method: "PUT", path: "/v1/integrations/buildkite", host: loop, body: `{"token":"x"}`, headers: with("Origin", "http://127.0.0.1:8080", "Content-Type", "text/plain")}, wantCode: "unsupported_media_type"},
		{name: "form body", req: req{method: "PUT", path: "/v1/integrations/buildkite", host: loop, body: `token=x`, headers: with("Content-Type", "application/x-www-form-urlencoded")}, wantCode: "unsupported_media_type"},
		{name: "body without Content-Type", req: req{method: "PUT", path: "/v1/integrations/buildkite", host: loop, body: `{"token":"x"}`}, wantCode: "unsupported_media_type"},
		{name: "JSON-looking type", req: req{method: "PUT", path: "/v1/integrations/buildkite", host: loop, body: `{}`, headers: with("Content-Type", "text/json")}, wantCode: "unsupported_media_type"},
		{name: "Buildkite webhook", req: req{method: "POST", path: "/hooks/3f2a", host: loop, body: `{}`, headers: with("Content-Type", "application/json", "X-Buildkite-Event", "job.finished")}},
		{name: "webhook on a foreign name", req: req{method: "POST", path: "/hooks/3f2a", host: "attacker.example:8080", body: `{}`, headers: jsonCT}, wantCode: "forbidden"},
		{name: "webhook from a page", req: req{method: "POST", path: "/hooks/3f2a", host: loop, body: `{}`, headers: with("Origin", "https://attacker.example", "Content-Type", "text/plain")}, wantCode: "forbidden"},
		{name: "webhook through the tunnel", hookBase: "https://kf.tunnel.example", req: req{method: "POST", path: "/hooks/3f2a", host: "kf.tunnel.example", body: `{}`, headers: jsonCT}},
		{name: "webhook through the tunnel, port spelt out", hookBase: "https://kf.tunnel.example", req: req{method: "POST", path: "/hooks/3f2a", host: "kf.tunnel.example:443", body: `{}`, headers: jsonCT}},
		{name: "webhook still local with a tunnel", hookBase: "https://kf.tunnel.example", req: req{method: "POST", path: "/hooks/3f2a", host: loop, body: `{}`, headers: jsonCT}},
		{name: "settings through the tunnel", hookBase: "https://kf.tunnel.example", req: req{method: "GET", path: "/v1/integrations/buildkite", host: "kf.tunnel.example"}, wantCode: "forbidden"},
		{name: "page through the tunnel", hookBase: "https://kf.tunnel.example", req: req{method: "GET", path: "/", host: "kf.tunnel.example"}, wantCode: "forbidden"},
		{name: "every address: a LAN address", addr: "0.0.0.0:8080", req: req{method: "GET", path: "/", host: "192.168.1.5:8080"}},
		{name: "every address: localhost", addr: "[::]:8080", req: req{method: "GET", path: "/", host: "localhost:8080"}},
		{name: "every address: a name", addr: "0.0.0.0:8080", req: req{method: "GET", path: "/", host: "attacker.example:8080"}, wantCode: "forbidden"},
		{name: "one LAN address", addr: "192.168.1.5:8080", req: req{method: "GET", path: "/", host: "192.168.1.5:8080"}},
		{name: "one LAN address: loopback", addr: "192.168.1.5:8080", req: req{method: "GET", path: "/", host: "127.0.0.1:8080"}, wantCode: "forbidden"},
		{name: "IPv6 loopback", addr: "[::1]:8080", req: req{method: "GET", path: "/", host: "[::1]:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := tt.addr
			if addr == "" {
				addr = loop
			}
			reached := false
			h, err := New(Config{Addr: addr, WebhookBaseURL: tt.hookBase}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached = true
				w.WriteHeader(http.StatusTeapot)
			}))
			if err != nil {
				t.Fatal(err)
			}
			rec := serve(h, tt.req)
			if tt.wantCode == "" {
				if !reached || rec.Code != http.StatusTeapot {
					t.Errorf("refused with %d %s, want passed through", rec.Code, rec.Body)
				}
				return
			}
			if reached {
				t.Fatal("the request reached the handler")
			}
			wantStatus := map[string]int{"forbidden": 403, "unsupported_media_type": 415}[tt.wantCode]
			var body struct {
				State string
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if diff := cmp.Diff([]any{wantStatus, tt.wantCode}, []any{rec.Code, body.Error.Code}); diff != "" {
				t.Errorf("status, code (-want +got):\n%s", diff)
			}
			if body.State == "" || len(body.Error.Message) < 30 {
				t.Errorf("body %s lacks the state or a message saying what to do", rec.Body)
			}
		})
	}
}

func serve(h http.Handler, rq req) *httptest.ResponseRecorder {
	r := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
	r.Host = rq.host
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{Addr: "localhost:8080"}, // the listener's address is an IP
		{Addr: "127.0.0.1"},
		{Addr: "127.0.0.1:8080", WebhookBaseURL: "not a url"},
	} {
		if _, err := New(cfg, http.NotFoundHandler()); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}
