package integration

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/connection"
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

// TestSettingsPage drives the settings page of the local stack in headless
// Chromium: connect, a failed re-connect that keeps the connection, and a
// disconnect.
func TestSettingsPage(t *testing.T) {
	const (
		good    = "bkua_b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7"
		revoked = "bkua_c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8"
	)
	bk := bkfake.New(t)
	bk.Add(good, bkfake.Token{Scopes: connection.RequiredScopes})

	srv := httptest.NewUnstartedServer(nil)
	cfg := config.Config{BuildkiteAPIURL: bk.URL, SecretPrefix: "kitefix/", WebhookBaseURL: "http://" + srv.Listener.Addr().String()}
	local, err := stack.OpenLocal(t.TempDir(), cfg, slog.New(slog.DiscardHandler), web.Handler())
	if err != nil {
		t.Fatalf("open local stack: %v", err)
	}
	defer local.Close()
	srv.Config.Handler = local.Handler
	srv.Start()
	defer srv.Close()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	waitState := func(want string) {
		t.Helper()
		expr := `document.getElementById("state").textContent === "` + want + `"`
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			state, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("state")))
			t.Fatalf("page state = %q, want %q: %v", state, want, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("read #%s: %v", id, err)
		}
		return s
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	waitState("not connected")

	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token-input"), good),
		chromedp.Click(chromedp.ID("connect")),
	); err != nil {
		t.Fatalf("connect: %v", err)
	}
	waitState("connected")
	if got := text("secret-value"); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got) {
		t.Errorf("webhook secret shown = %q, want 64 hex digits", got)
	}
	if got := text("webhook-url"); !strings.HasPrefix(got, srv.URL+"/hooks/") {
		t.Errorf("webhook url = %q", got)
	}
	if got := text("orgs"); !strings.Contains(got, "Acme (acme)") {
		t.Errorf("organizations = %q", got)
	}
	if got := text("caps"); !strings.HasPrefix(got, "no") {
		t.Errorf("capabilities without write_builds = %q", got)
	}
	value, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("token-input").value`))
	if err != nil || value != "" {
		t.Errorf("token input keeps the token after connect (%v)", err)
	}

	// A bad token leaves the connection in place and says so.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token-input"), revoked),
		chromedp.Click(chromedp.ID("connect")),
		chromedp.WaitVisible(chromedp.ID("attempt")),
	); err != nil {
		t.Fatalf("re-connect with a revoked token: %v", err)
	}
	waitState("connected")
	if got := text("attempt"); !strings.Contains(got, "rejected the token") {
		t.Errorf("last attempt shown = %q", got)
	}

	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil || strings.Contains(html, good) || strings.Contains(html, revoked) {
		t.Errorf("a token is left in the page (%v)", err)
	}

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.confirm = () => true; true`)); err != nil {
		t.Fatalf("accept the confirmation: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("disconnect"))); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	waitState("disconnected")
}
