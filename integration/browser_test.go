package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/localguard"
	"github.com/kitefix/kitefix/shared/stack"
	"github.com/kitefix/kitefix/web"
)

// chromiumPath finds the browser .ci/run installs; a machine without one
// fails the test rather than skipping it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install it (apt-get install chromium), as .ci/run does")
	return ""
}

// The tokens the fake Buildkite knows, one per outcome of a connect.
const (
	tokGood     = "bkua_b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7"
	tokRevoked  = "bkua_c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8"
	tokExpired  = "bkua_d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9"
	tokNoOrgs   = "bkua_e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"
	tokSlow     = "bkua_f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1"
	tokAgent    = "bkaa_a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2"
	tokLimited  = "bkua_a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3"
	tokenDesc   = "Development Token" // the fixture's description
	tokenOwner  = "Algernon Moncrieff"
	expiresDays = 5 // inside the page's two-week warning
)

var allTokens = []string{tokGood, tokRevoked, tokExpired, tokNoOrgs, tokSlow, tokAgent, tokLimited}

// pageEnv is kitefix's local stack with a fake Buildkite behind a gate that
// can hold one token's calls, so the page's busy state can be seen.
type pageEnv struct {
	t       *testing.T
	bk      *bkfake.Server
	srv     *httptest.Server
	release chan struct{}
	inner   http.Handler // the stack's handler, before kitefix serve's guard
	local   *stack.Local
	expires time.Time // when tokGood expires

	mu        sync.Mutex
	slowCalls int            // access-token calls made with tokSlow
	apiCalls  map[string]int // "METHOD path" of every /v1/ request
}

// newPageEnv starts the local stack against bkfake (behind the gate).
func newPageEnv(t *testing.T, wrap func(http.Handler) http.Handler) *pageEnv {
	t.Helper()
	return newPageEnvWith(t, "", wrap)
}

// newPageEnvWith starts the local stack against the Buildkite API at
// bkURL, or against bkfake when bkURL is empty.
func newPageEnvWith(t *testing.T, bkURL string, wrap func(http.Handler) http.Handler) *pageEnv {
	t.Helper()
	e := &pageEnv{t: t, bk: bkfake.New(t), release: make(chan struct{}), apiCalls: map[string]int{}}
	e.expires = time.Now().Add(expiresDays*24*time.Hour + time.Hour)
	expired := time.Now().Add(-48 * time.Hour)
	e.bk.Add(tokGood, bkfake.Token{Scopes: connection.RequiredScopes, ExpiresAt: &e.expires})
	e.bk.Add(tokExpired, bkfake.Token{Scopes: connection.RequiredScopes, ExpiresAt: &expired})
	e.bk.Add(tokNoOrgs, bkfake.Token{Scopes: connection.RequiredScopes, Orgs: []string{}})
	e.bk.Add(tokLimited, bkfake.Token{Scopes: connection.RequiredScopes, AccessTokenStatus: http.StatusTooManyRequests, RateLimitReset: 30})
	var lacking []string
	for _, s := range connection.RequiredScopes {
		if s != "read_job_env" && s != "read_suites" {
			lacking = append(lacking, s)
		}
	}
	e.bk.Add(tokSlow, bkfake.Token{Scopes: lacking})

	target, _ := url.Parse(e.bk.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+tokSlow && r.URL.Path == "/v2/access-token" {
			e.mu.Lock()
			e.slowCalls++
			e.mu.Unlock()
			select {
			case <-e.release:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(gate.Close)

	e.srv = httptest.NewUnstartedServer(nil)
	if bkURL == "" {
		bkURL = gate.URL
	}
	cfg := config.Config{BuildkiteAPIURL: bkURL, SecretPrefix: "kitefix/", WebhookBaseURL: "http://" + e.srv.Listener.Addr().String(), AutoRetry: true}
	local, err := stack.OpenLocal(t.TempDir(), cfg, slog.New(slog.DiscardHandler), web.Handler())
	if err != nil {
		t.Fatalf("open local stack: %v", err)
	}
	t.Cleanup(func() { local.Close() })
	e.local = local
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			e.mu.Lock()
			e.apiCalls[r.Method+" "+r.URL.Path]++
			e.mu.Unlock()
		}
		local.Handler.ServeHTTP(w, r)
	})
	if wrap != nil {
		h = wrap(h)
	}
	e.inner = h
	// As kitefix serve does: only its own page, at its own address.
	guarded, err := localguard.New(localguard.Config{Addr: e.srv.Listener.Addr().String(), WebhookBaseURL: cfg.WebhookBaseURL}, h)
	if err != nil {
		t.Fatalf("guard: %v", err)
	}
	e.srv.Config.Handler = guarded
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func (e *pageEnv) calls(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.apiCalls[key]
}

// newBrowser starts headless Chromium for the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab is one browser tab at one viewport, with what the tests ask of it.
type tab struct {
	t     *testing.T
	ctx   context.Context
	name  string // viewport name, in screenshot file names
	width int64
	shots string
	n     int
}

type viewport struct {
	name          string
	width, height int64
}

var viewports = []viewport{{"desktop", 1280, 900}, {"mobile", 375, 812}}

// screenshotDir is KITEFIX_SCREENSHOTS when set (kept after the run), else
// the test's artifact directory (kept with go test -artifacts).
func screenshotDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("KITEFIX_SCREENSHOTS"); d != "" {
		dir := filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.RemoveAll(dir); err != nil { // no screenshot of an earlier run stays
			t.Fatalf("screenshot dir: %v", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("screenshot dir: %v", err)
		}
		return dir
	}
	return t.ArtifactDir()
}

func newTab(t *testing.T, browser context.Context, vp viewport, setup string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	steps := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(vp.width, vp.height)}
	if setup != "" {
		steps = append(steps, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: setup})
			return err
		}))
	}
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return &tab{t: t, ctx: ctx, name: vp.name, width: vp.width, shots: screenshotDir(t)}
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *tab) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

func (b *tab) evalBool(js string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition; on timeout it reports what the
// page says.
func (b *tab) waitFor(what, cond string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		b.t.Fatalf("wait for %s: %v\npage says: %s", what, err, b.visibleText("main"))
	}
}

// visibleText is what a person sees in the element matched by sel.
func (b *tab) visibleText(sel string) string {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText.replace(/\s+/g, " ").trim() : "" })()`, sel)
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

func (b *tab) visible(sel string) bool {
	b.t.Helper()
	return b.evalBool(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.checkVisibility({ contentVisibilityAuto: true, visibilityProperty: true }) })()`, sel))
}

// visibleButtons are the labels of the buttons a person can see.
func (b *tab) visibleButtons() []string {
	b.t.Helper()
	s := b.eval(`JSON.stringify([...document.querySelectorAll("button")].filter(e => e.checkVisibility({ contentVisibilityAuto: true, visibilityProperty: true })).map(e => e.innerText.trim()))`)
	var got []string
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		b.t.Fatalf("decode buttons: %v", err)
	}
	return got
}

func (b *tab) badge() string { return b.visibleText("#state") }

func (b *tab) type_(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel, chromedp.Focus(sel), chromedp.SendKeys(sel, text))
}

func (b *tab) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(sel))
}

// shot saves the whole page as <n>-<state>-<viewport>.png and checks what
// holds in every state: no sideways scroll, readable contrast.
func (b *tab) shot(state string) {
	b.t.Helper()
	b.checkLayout(state)
	b.n++
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", state, err)
	}
	name := filepath.Join(b.shots, fmt.Sprintf("%02d-%s-%s.png", b.n, state, b.name))
	if err := os.WriteFile(name, png, 0o644); err != nil {
		b.t.Fatalf("save screenshot: %v", err)
	}
}

func (b *tab) checkLayout(state string) {
	b.t.Helper()
	if sw := b.eval(`(() => { const d = document.documentElement; return d.scrollWidth <= d.clientWidth ? "" : d.scrollWidth + " > " + d.clientWidth })()`); sw != "" {
		b.t.Errorf("%s at %d px: the page scrolls sideways (scrollWidth %s)", state, b.width, sw)
	}
	if low := b.eval(contrastJS); low != "" {
		b.t.Errorf("%s at %d px: text below 4.5:1 contrast:\n%s", state, b.width, low)
	}
}

// contrastJS lists each visible element with its own text whose colour on
// its effective background is below 4.5:1 (WCAG AA for normal text).
const contrastJS = `(() => {
  const parse = (c) => { const m = /rgba?\(([^)]+)\)/.exec(c); if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  const over = (top, under) => ({ r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1 });
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; } }
    let bg = matchMedia("(prefers-color-scheme: dark)").matches ? { r: 0, g: 0, b: 0, a: 1 } : { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg); return bg; };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.checkVisibility({ contentVisibilityAuto: true, visibilityProperty: true })) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== "");
    if (!own) continue;
    const bg = background(el); const fg = over(parse(getComputedStyle(el).color), bg);
    const l1 = lum(fg), l2 = lum(bg); const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < 4.5) out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + String(el.className).replace(/ /g, ".") : "") +
      " " + JSON.stringify(el.innerText.trim().slice(0, 40)) + ": " + ratio.toFixed(2));
  }
  return out.join("\n");
})()`

var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d`)

// TestBrowserSettingsPage walks the settings page of `kitefix serve`
// through every state a person meets, at desktop and phone widths: first
// visit, each rejected token, the busy check, connected with its webhook,
// a failed newer attempt, re-verify, rotate, dark mode and disconnect.
func TestBrowserSettingsPage(t *testing.T) {
	browser := newBrowser(t)
	for _, vp := range viewports {
		t.Run(vp.name, func(t *testing.T) {
			e := newPageEnv(t, nil)
			b := newTab(t, browser, vp, "")
			settingsFlow(t, e, b)
		})
	}
}

func settingsFlow(t *testing.T, e *pageEnv, b *tab) {
	b.do("open the page", chromedp.Navigate(e.srv.URL))
	b.waitFor("the first status", `document.getElementById("state").dataset.state !== "loading"`)

	// First visit: what kitefix does and what the token needs; nothing
	// about a token that does not exist.
	if got := b.visibleText("h1"); !strings.Contains(got, "kitefix settings") || !strings.Contains(got, "Buildkite") {
		t.Errorf("heading = %q, want it to say this is kitefix's Buildkite settings page", got)
	}
	if got := b.badge(); got != "Not connected" {
		t.Errorf("badge = %q, want Not connected", got)
	}
	if b.visible("#details") {
		t.Errorf("first visit shows token details: %q", b.visibleText("#details"))
	}
	if got := b.visibleButtons(); strings.Join(got, "|") != "Connect" {
		t.Errorf("buttons on first visit = %q, want only Connect", got)
	}
	scopes := b.visibleText("#scopes")
	for _, s := range append(append([]string{}, connection.RequiredScopes...), "write_builds", "optional", "annotate") {
		if !strings.Contains(scopes, s) {
			t.Errorf("scope list %q lacks %q", scopes, s)
		}
	}
	if n := b.eval(`String(document.querySelectorAll("#scopes li").length)`); n != "10" {
		t.Errorf("scope checklist has %s items, want 9 required and 1 optional", n)
	}
	if got := b.visibleText("#failures"); !strings.Contains(got, "Connect Buildkite above") {
		t.Errorf("empty failures on first visit = %q", got)
	}
	b.shot("first-visit")

	// Keyboard only: Tab reaches the token field, the focus is visible,
	// Enter submits.
	b.tabTo("token-input")
	b.do("type an agent token and press Enter", chromedp.SendKeys("#token-input", tokAgent), chromedp.KeyEvent(kb.Enter))
	b.waitFor("the wrong token type", `!!document.querySelector('#result [data-code="wrong_token_type"]')`)
	errorShown(t, b, "That is not an API access token", true)
	if got := b.eval(`document.getElementById("token-input").value`); got != "" {
		t.Errorf("token field keeps %d characters after a try", len(got))
	}
	b.shot("wrong-token-type")

	for _, c := range []struct {
		token, code, title, state string
		link                      bool
	}{
		{tokRevoked, "invalid_token", "Buildkite rejected the token", "invalid-token", true},
		{tokExpired, "expired_token", "The token has expired", "expired-token", true},
		{tokNoOrgs, "no_organization_access", "The token reaches no organization", "no-organization", true},
		{tokLimited, "buildkite_rate_limited", "Buildkite is rate limiting this token", "rate-limited", false},
	} {
		b.type_("#token-input", c.token)
		b.click("#connect")
		b.waitFor(c.code, `!!document.querySelector('#result [data-code="`+c.code+`"]')`)
		errorShown(t, b, c.title, c.link)
		if got := b.badge(); got != "Not connected" {
			t.Errorf("%s: badge = %q, want Not connected (no token is stored)", c.code, got)
		}
		if got := b.visibleButtons(); strings.Join(got, "|") != "Connect" {
			t.Errorf("%s: buttons = %q, want only Connect: no token was ever stored", c.code, got)
		}
		if c.code == "buildkite_rate_limited" {
			if got := b.visibleText("#result"); !strings.Contains(got, "wait 30 seconds") {
				t.Errorf("rate limit result = %q, want how long Buildkite asked to wait", got)
			}
		}
		if c.code == "expired_token" {
			msg := b.visibleText("#result")
			if rfc3339.MatchString(msg) || !b.visible("#result time") {
				t.Errorf("expiry date not in the reader's locale: %q", msg)
			}
		}
		b.shot(c.state)
	}

	// Busy: the check is under way, every action is disabled, a second
	// submit sends nothing.
	b.type_("#token-input", tokSlow)
	b.click("#connect")
	b.waitFor("the busy state", `document.getElementById("connect").disabled`)
	for _, id := range []string{"connect", "token-input"} {
		if !b.evalBool(`document.getElementById("` + id + `").disabled`) {
			t.Errorf("#%s is enabled while the check runs", id)
		}
	}
	if got := b.visibleText("#connect"); got != "Checking…" {
		t.Errorf("Connect button while checking = %q, want Checking…", got)
	}
	if got := b.visibleText("#result"); !strings.Contains(got, "Checking the token with Buildkite") {
		t.Errorf("busy result = %q", got)
	}
	if got := b.eval(`document.getElementById("connection").getAttribute("aria-busy")`); got != "true" {
		t.Errorf("aria-busy = %q while checking", got)
	}
	b.eval(`document.getElementById("connect-form").requestSubmit(); document.getElementById("connect").click(); ""`)
	b.shot("busy")
	close(e.release)
	b.waitFor("missing scopes", `!!document.querySelector('#result [data-code="missing_scopes"]')`)
	e.mu.Lock()
	slow := e.slowCalls
	e.mu.Unlock()
	if slow != 1 {
		t.Errorf("a double submit made %d checks with Buildkite, want 1", slow)
	}
	if n := e.calls("PUT /v1/integrations/buildkite"); n != 6 {
		t.Errorf("PUT requests = %d, want 6 (one per submitted token)", n)
	}
	errorShown(t, b, "The token lacks required scopes", true)
	missing := b.eval(`[...document.querySelectorAll("#scopes li.missing code")].map(e => e.textContent).join(" ")`)
	if missing != "read_job_env read_suites" {
		t.Errorf("scopes marked missing = %q, want read_job_env read_suites", missing)
	}
	if got := b.visibleText("#scopes"); !strings.Contains(got, "7 of 9 required scopes granted") {
		t.Errorf("scope summary = %q", got)
	}
	if b.evalBool(`document.getElementById("connect").disabled`) {
		t.Errorf("Connect stays disabled after the check")
	}
	b.shot("missing-scopes")

	// Connected.
	b.type_("#token-input", tokGood)
	b.click("#connect")
	b.waitFor("connected", `document.getElementById("state").textContent === "Connected"`)
	success := b.visibleText("#result")
	if !strings.Contains(success, "Connected to Buildkite") || !strings.Contains(success, "Acme") {
		t.Errorf("connect result = %q", success)
	}
	if got := b.eval(`document.activeElement.id`); got != "connection-h" {
		t.Errorf("focus after connect is on #%s, want the connection heading", got)
	}
	details := map[string]string{}
	for _, id := range []string{"token-desc", "token-owner", "token-expiry", "orgs", "caps", "verified"} {
		details[id] = b.visibleText("#" + id)
	}
	for id, want := range map[string]string{
		"token-desc":   tokenDesc,
		"token-owner":  tokenOwner,
		"token-expiry": fmt.Sprintf("Expires in %d days", expiresDays),
		"orgs":         "My Great Org (my-great-org), Acme",
		"caps":         "Not annotate builds",
	} {
		if !strings.Contains(details[id], want) {
			t.Errorf("#%s = %q, want it to contain %q", id, details[id], want)
		}
	}
	if !b.evalBool(`document.getElementById("token-expiry").classList.contains("warn")`) {
		t.Errorf("an expiry %d days away is not marked as a warning", expiresDays)
	}
	if v := details["verified"]; v == "" || rfc3339.MatchString(v) || !b.visible("#verified time") {
		t.Errorf("verified = %q, want a time in the reader's locale", v)
	}
	if got := strings.Join(b.visibleButtons(), "|"); got != "Verify again|Disconnect…|Copy URL|Copy secret|Make a new webhook secret…" {
		t.Errorf("buttons when connected = %q", got)
	}
	hookURL := b.visibleText("#webhook-url")
	if !strings.HasPrefix(hookURL, e.srv.URL+"/hooks/") {
		t.Errorf("webhook url = %q", hookURL)
	}
	secret := b.visibleText("#secret-value")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secret) {
		t.Errorf("webhook secret shown = %q, want 64 hex digits", secret)
	}
	hook := b.visibleText("#webhook")
	for _, want := range []string{"Notification Services", "X-Buildkite-Signature", "recommended", "ping, build.finished and job.finished", "Last delivery received: none yet"} {
		if !strings.Contains(hook, want) {
			t.Errorf("webhook setup lacks %q: %q", want, hook)
		}
	}
	if got := b.visibleText("#failures"); !strings.Contains(got, "Waiting for Buildkite's first webhook") {
		t.Errorf("empty failures when connected = %q", got)
	}
	b.shot("connected")

	b.click(`button[data-copy="webhook-url"]`)
	b.waitFor("the copy confirmation", `document.querySelector('button[data-copy="webhook-url"]').textContent === "Copied"`)

	if got := b.visibleText("#token-scopes"); got != "All 9 required; write_builds not granted (optional)" {
		t.Errorf("scopes of the connected token = %q", got)
	}

	// A newer token that fails: shown once, as the attempt it was.
	if b.visible("#token-input") {
		t.Errorf("the form to replace the token is open without being asked for")
	}
	b.click("#replace > summary")
	b.type_("#token-input", tokRevoked)
	b.click("#connect")
	b.waitFor("the failed attempt", `!!document.querySelector('#result [data-code="invalid_token"]')`)
	attemptShown(t, b, true)
	b.shot("failed-newer-attempt")
	b.do("reload", chromedp.Reload())
	b.waitFor("the status after reload", `document.getElementById("state").textContent === "Connected"`)
	attemptShown(t, b, false)
	if b.visible("#secret") {
		t.Errorf("the webhook secret is shown again after a reload")
	}

	// Re-verify clears the attempt.
	b.click("#verify")
	b.waitFor("verified", `document.getElementById("result").innerText.includes("The token still works")`)
	if b.visible("#result .warning") {
		t.Errorf("the failed attempt is still shown after a successful verify")
	}
	b.shot("verified")

	// The stored token stops working: the connection fails, says why and
	// what to do, and offers a check again once the token is fixed.
	good := bkfake.Token{Scopes: connection.RequiredScopes, ExpiresAt: &e.expires}
	e.bk.Add(tokGood, bkfake.Token{AccessTokenStatus: http.StatusUnauthorized})
	b.click("#verify")
	b.waitFor("the failed connection", `document.getElementById("state").textContent === "Connection failed"`)
	errorShown(t, b, "Buildkite rejected the token", true)
	if got := strings.Join(b.visibleButtons(), "|"); got != "Verify again|Disconnect…|Connect" {
		t.Errorf("buttons when the stored token fails = %q", got)
	}
	if got := b.visibleText("#caps"); !strings.Contains(got, "Nothing until a working token is connected") {
		t.Errorf("capabilities of a failed connection = %q", got)
	}
	if !b.visible("#token-input") {
		t.Errorf("no way to connect another token when the stored one fails")
	}
	if got := b.visibleText("#failures"); !strings.Contains(got, "while the connection above is failing") {
		t.Errorf("empty failures with a failing connection = %q", got)
	}
	b.shot("stored-token-failed")
	e.bk.Add(tokGood, good)
	b.click("#verify")
	b.waitFor("connected again", `document.getElementById("state").textContent === "Connected"`)

	// Rotate: a confirmation first, which Escape cancels.
	b.click("#rotate")
	b.waitFor("the rotate confirmation", `document.getElementById("confirm").open`)
	if got := b.visibleText("#confirm"); !strings.Contains(got, "24 hours") || !strings.Contains(got, "Buildkite") {
		t.Errorf("rotate confirmation = %q, want it to say the old secret works for 24 hours more", got)
	}
	if got := b.eval(`document.activeElement.id`); got != "confirm-cancel" {
		t.Errorf("focus in the confirmation is on #%s, want Cancel", got)
	}
	b.shot("rotate-confirm")
	b.do("press Escape", chromedp.KeyEvent(kb.Escape))
	b.waitFor("the confirmation to close", `!document.getElementById("confirm").open`)
	if n := e.calls("POST /v1/integrations/buildkite/webhook-secret"); n != 0 {
		t.Errorf("a cancelled rotation sent %d requests", n)
	}
	// Again by keyboard only: Tab to the button, Enter, Tab to the
	// confirmation's button, Enter.
	b.tabTo("rotate")
	b.do("press Enter", chromedp.KeyEvent(kb.Enter))
	b.waitFor("the rotate confirmation", `document.getElementById("confirm").open`)
	b.tabTo("confirm-ok")
	b.do("press Enter", chromedp.KeyEvent(kb.Enter))
	b.waitFor("the new secret", `!document.getElementById("secret").hidden`)
	if got := b.visibleText("#secret-value"); got == secret || len(got) != 64 {
		t.Errorf("secret after rotation = %q, want a new one", got)
	}
	if got := b.visibleText("#result"); !strings.Contains(got, "24 hours") {
		t.Errorf("rotate result = %q", got)
	}
	b.shot("rotated")

	// Dark mode follows the system.
	setColorScheme(t, b, "dark")
	if got := b.eval(`getComputedStyle(document.body).backgroundColor`); got != "rgb(14, 17, 23)" {
		t.Errorf("dark body background = %s", got)
	}
	b.shot("connected-dark")
	setColorScheme(t, b, "light")

	// The narrowest phone.
	if b.width < 400 {
		b.do("320 px", chromedp.EmulateViewport(320, 700))
		b.checkLayout("connected at 320 px")
		b.do("back", chromedp.EmulateViewport(b.width, 812))
	}

	// Disconnect, confirmed.
	b.click("#disconnect")
	b.waitFor("the disconnect confirmation", `document.getElementById("confirm").open`)
	b.shot("disconnect-confirm")
	b.click("#confirm-ok")
	b.waitFor("disconnected", `document.getElementById("state").textContent === "Disconnected"`)
	if b.visible("#details") || b.visible("#webhook") {
		t.Errorf("after disconnect the page still shows: %q", b.visibleText("main"))
	}
	if got := strings.Join(b.visibleButtons(), "|"); got != "Connect" {
		t.Errorf("buttons after disconnect = %q, want only Connect", got)
	}
	if got := b.visibleText("#result"); !strings.Contains(got, "Disconnected") || !strings.Contains(got, "deleted") {
		t.Errorf("disconnect result = %q", got)
	}
	b.shot("disconnected")

	html := b.eval(`document.documentElement.outerHTML`)
	for _, tok := range allTokens {
		if strings.Contains(html, tok) {
			t.Errorf("a token is left in the page")
		}
	}
}

// tabTo presses Tab until the element with id has the focus, checking on
// the way that each focused control shows a visible outline.
func (b *tab) tabTo(id string) {
	b.t.Helper()
	for range 40 {
		if b.eval(`document.activeElement.id`) == id {
			return
		}
		b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		if style := b.eval(`(() => { const a = document.activeElement; if (!a.matches("a, button, summary, input")) return "n/a";
			const s = getComputedStyle(a); return s.outlineStyle + " " + s.outlineWidth })()`); style != "n/a" && !strings.HasPrefix(style, "solid 3px") {
			b.t.Errorf("focused %s has outline %q, want a visible 3px outline", b.eval(`document.activeElement.outerHTML.slice(0, 60)`), style)
		}
	}
	b.t.Fatalf("Tab never reached #%s", id)
}

// errorShown checks the one result: an alert with its title, the next
// step and the link to Buildkite's token settings as a link.
func errorShown(t *testing.T, b *tab, title string, link bool) {
	t.Helper()
	if n := b.eval(`String(document.querySelectorAll("#result .notice").length)`); n != "1" {
		t.Errorf("%s: %s notices shown, want the one result", title, n)
	}
	if !b.visible(`#result [role="alert"]`) {
		t.Errorf("%s: the error is not an alert", title)
	}
	if got := b.visibleText("#result .notice-title"); got != title {
		t.Errorf("error title = %q, want %q", got, title)
	}
	if link && !b.visible(`#result a[href="https://buildkite.com/user/api-access-tokens"]`) {
		t.Errorf("%s: the token settings address is not a link: %q", title, b.visibleText("#result"))
	}
}

func attemptShown(t *testing.T, b *tab, fresh bool) {
	t.Helper()
	if got := b.badge(); got != "Connected" {
		t.Errorf("badge after a failed newer token = %q, want Connected", got)
	}
	if n := b.eval(`String(document.querySelectorAll("#result .notice").length)`); n != "1" {
		t.Errorf("failed attempt shown %s times, want once", n)
	}
	text := b.visibleText("#result")
	if !strings.Contains(text, "A newer token was not connected") || !strings.Contains(text, "still uses the connected token") {
		t.Errorf("failed attempt = %q", text)
	}
	if b.visible("#result .error") {
		t.Errorf("the failed attempt is also shown as an error")
	}
	if got := b.evalBool(`!!document.querySelector('#result [role="alert"]')`); got != fresh {
		t.Errorf("failed attempt announced as an alert = %v, want %v (only right after the attempt)", got, fresh)
	}
	if got := b.visibleText("#token-desc"); !strings.Contains(got, tokenDesc) {
		t.Errorf("token details after the failed attempt = %q", got)
	}
}

func setColorScheme(t *testing.T, b *tab, scheme string) {
	t.Helper()
	b.do("prefers-color-scheme "+scheme, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}
