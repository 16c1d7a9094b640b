package bkfake_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/loganalysis"
	"github.com/kitefix/kitefix/shared/stack"
)

// TestDemoFailuresAreDistinct checks the scenario covers the four kinds
// once each, with a log for each.
func TestDemoFailuresAreDistinct(t *testing.T) {
	t.Parallel()
	var got []bkfake.Kind
	for _, f := range bkfake.DemoFailures {
		got = append(got, f.Kind)
		if _, err := bkfake.DemoLog(f); err != nil {
			t.Errorf("%s: %v", f.Kind, err)
		}
	}
	want := []bkfake.Kind{bkfake.KindTestFailure, bkfake.KindCompileError, bkfake.KindAgentLost, bkfake.KindFlakyTest}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("demo kinds (-want +got):\n%s", diff)
	}
}

// TestDemoLogsExplainTheirKind runs kitefix's analyzer over each demo log
// as the simulated organization serves it: each is explained as the
// category its kind means, and the flaky build's failing test is one Test
// Engine lists as flaky.
func TestDemoLogsExplainTheirKind(t *testing.T) {
	t.Parallel()
	d := startDemo(t, bkfake.DemoConfig{Spacing: -1})
	bk := buildkite.New(bkfake.DemoToken, buildkite.WithBaseURL(d.URL()))
	flaky, err := bk.FlakyTests(context.Background(), bkfake.DemoOrg)
	if err != nil {
		t.Fatalf("list flaky tests: %v", err)
	}
	for _, f := range bkfake.DemoFailures {
		text, err := bkfake.DemoLog(f)
		if err != nil {
			t.Fatal(err)
		}
		raw := bkfake.RawLog(text, time.Unix(1764650000, 0))
		res, err := loganalysis.Analyze(context.Background(), strings.NewReader(raw), loganalysis.Options{})
		if err != nil {
			t.Fatalf("%s: analyze: %v", f.Kind, err)
		}
		if got := string(res.Category); got != f.Category {
			t.Errorf("%s: category %q, want %q (summary %q)", f.Kind, got, f.Category, res.Summary)
		}
		if res.Summary == "" || len(res.Excerpts) == 0 {
			t.Errorf("%s: no summary or excerpt: %+v", f.Kind, res)
		}
		isFlaky := len(res.FailingTests) > 0
		for _, ft := range res.FailingTests {
			isFlaky = isFlaky && slices.ContainsFunc(flaky, func(t buildkite.Test) bool { return t.Name == ft.Name })
		}
		if want := f.Kind == bkfake.KindFlakyTest; isFlaky != want {
			t.Errorf("%s: failing tests %v all flaky in Test Engine = %v, want %v", f.Kind, res.FailingTests, isFlaky, want)
		}
	}
}

func startDemo(t *testing.T, cfg bkfake.DemoConfig) *bkfake.Demo {
	t.Helper()
	d, err := bkfake.StartDemo(cfg)
	if err != nil {
		t.Fatalf("start demo: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// localStack serves kitefix's local stack against the demo organization,
// with its analyze worker running.
func localStack(t *testing.T, d *bkfake.Demo) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	cfg := config.Config{BuildkiteAPIURL: d.URL(), SecretPrefix: "kitefix/", WebhookBaseURL: base, AutoRetry: true}
	local, err := stack.OpenLocal(t.TempDir(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatalf("open local stack: %v", err)
	}
	srv.Config.Handler = local.Handler
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { local.RunWorker(ctx, 0) })
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wg.Wait()
		local.Close()
	})
	return base
}

// TestDemoRun plays the demo against kitefix's local stack: the demo token
// connects, the four builds arrive as signed webhooks, and each is
// analyzed as its kind says, annotated on the simulated build, and retried
// (the retry then passing) exactly when the kind calls for it.
func TestDemoRun(t *testing.T) {
	t.Parallel()
	d := startDemo(t, bkfake.DemoConfig{Spacing: -1, RetryPassesAfter: 50 * time.Millisecond})
	base := localStack(t, d)
	ctx := context.Background()
	if err := d.Run(ctx, base, io.Discard); err != nil {
		t.Fatalf("run demo: %v", err)
	}

	analyses := waitAnalyses(t, base, len(bkfake.DemoFailures))
	org := d.Org()
	for _, f := range bkfake.DemoFailures {
		i := slices.IndexFunc(analyses, func(a analysis.Record) bool { return a.Pipeline == f.Pipeline && a.BuildNumber == f.Number })
		if i < 0 {
			t.Errorf("%s: no analysis of %s #%d", f.Kind, f.Pipeline, f.Number)
			continue
		}
		a := analyses[i]
		if a.State != analysis.StateAnalyzed || string(a.Category) != f.Category || a.Summary == "" {
			t.Errorf("%s: analysis state %q category %q summary %q, want analyzed %q with a summary", f.Kind, a.State, a.Category, a.Summary, f.Category)
		}
		if got, want := a.Links.Build, org.BuildWebURL(f.Pipeline, f.Number); got != want {
			t.Errorf("%s: build link %q, want %q", f.Kind, got, want)
		}
		if got := a.Actions.Retried != nil; got != f.Retried {
			t.Errorf("%s: retried %v, want %v (actions %+v)", f.Kind, got, f.Retried, a.Actions)
		}
		if a.Actions.Annotated == nil {
			t.Errorf("%s: not annotated: %+v", f.Kind, a.Actions)
		}
		notes := org.Annotations(f.Pipeline, f.Number)
		if len(notes) != 1 || notes[0].Context != analysis.AnnotationContext || notes[0].Style != "error" ||
			!strings.Contains(bkfake.RenderMarkdown(notes[0].Body), html.EscapeString(a.Summary)) {
			t.Errorf("%s: annotations %+v, want one kitefix error annotation with the summary %q", f.Kind, notes, a.Summary)
		}
	}
	for _, f := range bkfake.DemoFailures {
		if !f.Retried {
			continue
		}
		waitFor(t, f.Pipeline+" passing after its retry", func() bool {
			b, _ := org.Build(f.Pipeline, f.Number)
			return b.State == "passed"
		})
	}
	if got := len(org.Retries()); got != 2 {
		t.Errorf("jobs retried: %d, want 2", got)
	}
}

// TestDemoConnectAgain connects an already connected kitefix: the secret
// is not shown again, so the demo makes a new one, and its webhooks are
// accepted.
func TestDemoConnectAgain(t *testing.T) {
	t.Parallel()
	d := startDemo(t, bkfake.DemoConfig{Spacing: -1})
	base := localStack(t, d)
	ctx := context.Background()
	first, err := d.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	again, err := d.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect again: %v", err)
	}
	if first.URL != again.URL || !strings.HasPrefix(again.URL, base+"/hooks/") {
		t.Errorf("webhook URLs %q then %q, want the same one under %s/hooks/", first.URL, again.URL, base)
	}
	if err := d.Play(ctx, again); err != nil {
		t.Fatalf("play after connecting again: %v", err)
	}
	waitAnalyses(t, base, len(bkfake.DemoFailures))
}

// waitAnalyses waits until kitefix lists n reported analyses.
func waitAnalyses(t *testing.T, base string, n int) []analysis.Record {
	t.Helper()
	var got []analysis.Record
	waitFor(t, "the demo's analyses", func() bool {
		resp, err := http.Get(base + "/v1/analyses?limit=20")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Analyses []analysis.Record `json:"analyses"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return false
		}
		got = body.Analyses
		done := 0
		for _, a := range got {
			if a.Actions.Annotated != nil {
				done++
			}
		}
		return done >= n
	})
	return got
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDemoPage checks the settings page's config.js during the demo: the
// page refreshes every two seconds and its note names the simulated
// organization and the demo token; every other file is the page's own.
func TestDemoPage(t *testing.T) {
	t.Parallel()
	d := startDemo(t, bkfake.DemoConfig{Spacing: -1})
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page "+r.URL.Path) })
	h := d.Page(page)
	get := func(path string) (string, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Body.String(), rec.Header().Get("Content-Type")
	}
	js, ct := get("/config.js")
	if !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("config.js Content-Type %q", ct)
	}
	for _, want := range []string{"refreshSeconds: 2", `"url":"` + d.URL() + `/"`, `"` + bkfake.DemoToken + `"`, `"agent lost"`, `"demo-note"`} {
		if !strings.Contains(js, want) {
			t.Errorf("config.js lacks %q:\n%s", want, js)
		}
	}
	if got, _ := get("/app.js"); got != "page /app.js" {
		t.Errorf("GET /app.js = %q, want the page's own", got)
	}
}
