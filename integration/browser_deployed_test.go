package integration

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// apiGateway stands where API Gateway stands in a deployment: another
// origin than the page, CORS for the allowed origin (as template.yaml
// declares it), and a bearer token required on every request but the
// preflight.
type apiGateway struct {
	origin string // the page's origin, the one allowed
	token  string // the bearer token the authorizer accepts
	next   http.Handler

	mu       sync.Mutex
	seen     []string // "METHOD path auth=<ok|bad|none>"
	preflgot int
}

func (g *apiGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Header.Get("Origin") == g.origin {
		h.Set("Access-Control-Allow-Origin", g.origin)
		h.Set("Access-Control-Expose-Headers", "retry-after")
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		g.mu.Lock()
		g.preflgot++
		g.mu.Unlock()
		if r.Header.Get("Origin") != g.origin {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h.Set("Access-Control-Allow-Methods", "GET,PUT,POST,DELETE")
		h.Set("Access-Control-Allow-Headers", "authorization,content-type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	auth := "none"
	switch r.Header.Get("Authorization") {
	case "":
	case "Bearer " + g.token:
		auth = "ok"
	default:
		auth = "bad"
	}
	g.mu.Lock()
	g.seen = append(g.seen, r.Method+" "+r.URL.Path+" auth="+auth)
	g.mu.Unlock()
	if auth != "ok" {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Unauthorized"}`))
		return
	}
	// The connect function behind API Gateway sees the request from the
	// gateway, not from the browser.
	r.Header.Del("Origin")
	r.Header.Del("Sec-Fetch-Site")
	g.next.ServeHTTP(w, r)
}

func (g *apiGateway) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string{}, g.seen...)
}

// TestBrowserDeployedBundle serves the page's files from one origin, as a
// static host does, and the API from another behind a bearer token: the
// page finds the API through window.kitefix, sends the token the embedding
// app hands it on every request, and connects; a token the API refuses
// reads as signed out.
func TestBrowserDeployedBundle(t *testing.T) {
	browser := newBrowser(t)

	var gw *apiGateway
	e := newPageEnv(t, nil)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gw.ServeHTTP(w, r) }))
	t.Cleanup(api.Close)

	files := http.FileServer(http.Dir("../web/static"))
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What a static host in front of the bundle sets: the API's
		// origin is the only other one the page may reach.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' "+api.URL+"; frame-ancestors 'none'; base-uri 'none'")
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(static.Close)
	// The API as the connect function serves it: the same handler as the
	// local stack, reached from the gateway.
	gw = &apiGateway{origin: static.URL, token: "eyJ.test-jwt.sig", next: unguarded(e)}

	for _, c := range []struct {
		name, token string
	}{
		{"signed-in", gw.token},
		{"signed-out", "eyJ.expired.sig"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setup := `window.kitefix = { apiBase: "` + api.URL + `/", getToken: () => Promise.resolve("` + c.token + `") };`
			b := newTab(t, browser, viewports[0], setup)
			b.do("open the bundle", chromedp.Navigate(static.URL+"/index.html"))
			b.waitFor("the first status", `document.getElementById("state").dataset.state !== "loading"`)
			if c.token != gw.token {
				b.waitFor("the signed-out error", `!!document.querySelector('#result [role="alert"]')`)
				if got := b.visibleText("#result"); !strings.Contains(got, "You are signed out") || !strings.Contains(got, "Sign in again") {
					t.Errorf("signed-out result = %q", got)
				}
				b.shot("deployed-signed-out")
				return
			}
			if got := b.badge(); got != "Not connected" {
				t.Errorf("badge = %q", got)
			}
			b.type_("#token-input", tokGood)
			b.click("#connect")
			b.waitFor("connected", `document.getElementById("state").textContent === "Connected"`)
			b.shot("deployed-connected")
			for _, req := range gw.requests() {
				if !strings.HasSuffix(req, "auth=ok") {
					t.Errorf("request without the app's bearer token: %s", req)
				}
			}
			want := map[string]bool{"GET /v1/integrations/buildkite auth=ok": false, "PUT /v1/integrations/buildkite auth=ok": false, "GET /v1/analyses auth=ok": false}
			for _, req := range gw.requests() {
				if _, ok := want[req]; ok {
					want[req] = true
				}
			}
			for req, seen := range want {
				if !seen {
					t.Errorf("the page never sent %s; it sent %q", req, gw.requests())
				}
			}
			gw.mu.Lock()
			pre := gw.preflgot
			gw.mu.Unlock()
			if pre == 0 {
				t.Errorf("no CORS preflight reached the API: the test does not show the cross-origin path")
			}
		})
	}
}

// unguarded is the local stack's handler without kitefix serve's own-page
// guard, as the connect function serves it behind API Gateway.
func unguarded(e *pageEnv) http.Handler { return e.inner }

// TestBrowserConcurrentChange: when another change to the connection wins
// (409 conflict), the page says so once, shows the connection as it now
// is, and the next try works.
func TestBrowserConcurrentChange(t *testing.T) {
	browser := newBrowser(t)
	var once sync.Once
	e := newPageEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			lost := false
			if r.Method == http.MethodPost && r.URL.Path == "/v1/integrations/buildkite/verify" {
				once.Do(func() { lost = true })
			}
			if !lost {
				next.ServeHTTP(w, r)
				return
			}
			// What the settings API answers when a concurrent change won.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"state":"connected","organizations":[],"missing_scopes":[],"optional_scopes_missing":[],"capabilities":{"annotate":false,"retry":false},` +
				`"error":{"code":"conflict","message":"Another change to this Buildkite connection happened at the same time and won; nothing was changed by this request. Reload the status and try again."}}`))
		})
	})
	b := newTab(t, browser, viewports[1], "")
	b.do("open the page", chromedp.Navigate(e.srv.URL))
	b.waitFor("the first status", `document.getElementById("state").dataset.state !== "loading"`)
	b.type_("#token-input", tokGood)
	b.click("#connect")
	b.waitFor("connected", `document.getElementById("state").textContent === "Connected"`)

	gets := e.calls("GET /v1/integrations/buildkite")
	b.click("#verify")
	b.waitFor("the conflict", `!!document.querySelector('#result [data-code="conflict"]')`)
	errorShown(t, b, "Another change came first", false)
	b.waitFor("the status read again", `!document.getElementById("verify").disabled`)
	if n := e.calls("GET /v1/integrations/buildkite"); n <= gets {
		t.Errorf("the page did not read the status again after the conflict")
	}
	if got := b.visibleText("#token-desc"); !strings.Contains(got, tokenDesc) {
		t.Errorf("after the conflict the token details read %q", got)
	}
	b.shot("conflict")
	b.click("#verify")
	b.waitFor("verified", `document.getElementById("result").innerText.includes("The token still works")`)
}
