package analysis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/storage"
)

const (
	testToken  = "bkua_0123456789abcdef0123456789abcdef01234567"
	testTenant = "acme-tenant"
	testOrg    = "acme"
)

const testLog = "~~~ Running tests\n$ go test ./...\n=== RUN   TestWidgetSave\n    widget_test.go:42: save widget: got status 500, want 201\n--- FAIL: TestWidgetSave (0.03s)\nFAIL\nFAIL\tgithub.com/acme/widgets\t0.204s\n🚨 Error: The command exited with status 1\n"

const lostLog = "~~~ Running tests\n$ make test\nrunning...\n# Exited with status -1 (process killed or agent lost; see the timeline tab for more information)\n"

// fakeConnections is one tenant's connection in memory.
type fakeConnections struct {
	mu       sync.Mutex
	recs     map[string]connection.Record
	token    string
	verified int
}

func newConnections(caps connection.Capabilities) *fakeConnections {
	return &fakeConnections{token: testToken, recs: map[string]connection.Record{testTenant: {
		Tenant: testTenant, State: connection.StateConnected, Capabilities: caps,
		Organizations: []connection.Organization{{Slug: testOrg, Name: "Acme"}},
	}}}
}

func (f *fakeConnections) GetConnection(_ context.Context, tenant string) (connection.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.recs[tenant]
	if !ok {
		return connection.Record{}, storage.ErrNotFound
	}
	return rec, nil
}

func (f *fakeConnections) Token(context.Context, string) (string, error) { return f.token, nil }

func (f *fakeConnections) Verify(_ context.Context, tenant string) (connection.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verified++
	rec := f.recs[tenant]
	rec.State = connection.StateFailed
	f.recs[tenant] = rec
	return rec, nil
}

func (f *fakeConnections) Tenants(context.Context) ([]string, error) {
	return []string{testTenant}, nil
}

// fakeDeliveries are dedupe records in memory, each held until it expires.
type fakeDeliveries struct {
	mu   sync.Mutex
	held map[string]time.Time
	// claimed is the expiry each key was first claimed with.
	claimed map[string]time.Time
}

func (f *fakeDeliveries) ClaimDelivery(_ context.Context, tenant, key string, expires time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = map[string]time.Time{}
	}
	if until, ok := f.held[tenant+"/"+key]; ok && time.Now().Before(until) {
		return storage.ErrConflict
	}
	f.held[tenant+"/"+key] = expires
	if f.claimed == nil {
		f.claimed = map[string]time.Time{}
	}
	f.claimed[tenant+"/"+key] = expires
	return nil
}

func (f *fakeDeliveries) ConfirmDelivery(_ context.Context, tenant, key string, expires time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = map[string]time.Time{}
	}
	f.held[tenant+"/"+key] = expires
	return nil
}

// expiry is when the record of key expires (zero: none).
func (f *fakeDeliveries) expiry(tenant, key string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[tenant+"/"+key]
}

func (f *fakeDeliveries) ReleaseDelivery(_ context.Context, tenant, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, tenant+"/"+key)
	return nil
}

// fakeQueue collects sent messages.
type fakeQueue struct {
	mu   sync.Mutex
	sent []queue.Message
}

func (f *fakeQueue) Send(_ context.Context, body []byte, _ string) error {
	m, err := queue.Decode(body)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	return nil
}

// env is a worker over a fake Buildkite and a real embedded store.
type env struct {
	bk    *analysistest.Server
	store *localstore.Store
	conns *fakeConnections
	dels  *fakeDeliveries
	queue *fakeQueue
	w     *analysis.Worker
	cfg   analysis.Config
}

type envOption func(*analysis.Config)

func newEnv(t testing.TB, caps connection.Capabilities, opts ...envOption) *env {
	t.Helper()
	store, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{bk: analysistest.New(t, testToken, testOrg), store: store, conns: newConnections(caps), dels: &fakeDeliveries{}, queue: &fakeQueue{}}
	cfg := analysis.Config{
		Connections: e.conns, Store: store, Budget: store, Deliveries: e.dels, Queue: e.queue,
		Buildkite: func(token string, lim buildkite.Limiter) analysis.Buildkite {
			return buildkite.New(token, buildkite.WithBaseURL(e.bk.URL), buildkite.WithLimiter(lim),
				buildkite.WithBackoff(time.Millisecond, 2*time.Millisecond), buildkite.WithMaxRateLimitWait(0),
				buildkite.WithTimeout(5*time.Second))
		},
		AutoRetry: true, NoBaseline: true, Logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.cfg = cfg
	e.w = analysis.New(cfg)
	return e
}

var allCaps = connection.Capabilities{Annotate: true, Retry: true}

func jobMessage(number int, jobID string) queue.Message {
	return queue.Message{Kind: queue.KindJob, TenantID: testTenant, Org: testOrg, Pipeline: "web", BuildNumber: number,
		BuildID: fmt.Sprintf("build-web-%d", number), JobID: jobID, Reason: queue.ReasonWebhook, QueuedAt: time.Now().UTC()}
}

func body(t testing.TB, m queue.Message) []byte {
	t.Helper()
	b, err := queue.Encode(m)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

// logReads is how many times the fake Buildkite served jobID's log.
func (e *env) logReads(jobID string) int {
	n := 0
	for _, c := range e.bk.Calls() {
		if strings.HasSuffix(c, "/jobs/"+jobID+"/log") {
			n++
		}
	}
	return n
}

func (e *env) analysis(t *testing.T, jobID string) analysis.Record {
	t.Helper()
	rec, err := e.store.GetAnalysis(context.Background(), testTenant, "job:"+jobID)
	if err != nil {
		t.Fatalf("get analysis of %s: %v", jobID, err)
	}
	return rec
}

func TestAnalyzeTestFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 7, time.Now(), "job-1"))
	e.bk.SetLogText("job-1", testLog)

	out := e.w.HandleBody(context.Background(), body(t, jobMessage(7, "job-1")), 1)
	if out.Verdict != analysis.Done || out.Jobs != 1 {
		t.Fatalf("outcome %v (%v), jobs %d; want done, 1", out, out.Err, out.Jobs)
	}
	rec := e.analysis(t, "job-1")
	got := map[string]any{"state": string(rec.State), "category": string(rec.Category), "retry_skipped": rec.Actions.RetrySkipped,
		"annotated": rec.Actions.Annotated != nil, "requests": rec.Requests, "tests": len(rec.FailingTests)}
	want := map[string]any{"state": "analyzed", "category": "test",
		"retry_skipped": "a test failure with no test known to be flaky: a retry would fail the same way",
		"annotated":     true, "requests": 4, "tests": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("analysis (-want +got):\n%s", diff)
	}
	// build, log, Test Engine suites (no flaky list), annotation.
	anns := e.bk.Annotations()
	if len(anns) != 1 || anns[0].Context != "kitefix" || anns[0].Style != "error" || anns[0].Append {
		t.Fatalf("annotations %+v; want one kitefix error annotation, replaced", anns)
	}
	for _, s := range []string{"TestWidgetSave", "save widget: got status 500", "job-1"} {
		if !strings.Contains(anns[0].Body, s) {
			t.Errorf("annotation lacks %q:\n%s", s, anns[0].Body)
		}
	}
	if r := e.bk.Retries(); len(r) != 0 {
		t.Errorf("retries %v; want none for a test failure nobody saw pass", r)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testTenant) || strings.Contains(string(b), testToken) {
		t.Errorf("record JSON holds the tenant or the token: %s", b)
	}
}

func TestAgentLostRetriedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 8, time.Now(), "job-lost"))
	e.bk.SetLogText("job-lost", lostLog)

	// The same message delivered concurrently and again afterwards.
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A duplicate that finds the analysis being reported comes
			// back later.
			if out := e.w.HandleBody(context.Background(), body(t, jobMessage(8, "job-lost")), 1); out.Verdict == analysis.Poison {
				t.Errorf("outcome %v: %v", out, out.Err)
			}
		}()
	}
	wg.Wait()
	if out := e.w.HandleBody(context.Background(), body(t, jobMessage(8, "job-lost")), 2); out.Verdict != analysis.Done {
		t.Errorf("delivery after the report: %v %v", out, out.Err)
	}

	if diff := cmp.Diff([]string{"job-lost"}, e.bk.Retries()); diff != "" {
		t.Errorf("retries (-want +got):\n%s", diff)
	}
	rec := e.analysis(t, "job-lost")
	if rec.Category != "infrastructure" || rec.Actions.Retried == nil || !strings.HasPrefix(rec.Actions.Retried.JobID, "job-lost-retry") {
		t.Fatalf("analysis: category %s, retried %+v; want infrastructure, retried", rec.Category, rec.Actions.Retried)
	}
	if rec.Requests != 4 {
		t.Errorf("requests %d; want 4 (build, log, retry, annotation)", rec.Requests)
	}

	// The retry fails the same way: it is itself a retry, never retried.
	retryID := rec.Actions.Retried.JobID
	b, _ := e.bk.Build("web", 8)
	for i := range b.Jobs {
		if b.Jobs[i].ID == retryID {
			one := 1
			b.Jobs[i].State, b.Jobs[i].ExitStatus = "failed", &one
		}
	}
	e.bk.AddBuild(b)
	e.bk.SetLogText(retryID, lostLog)
	if out := e.w.HandleBody(context.Background(), body(t, jobMessage(8, retryID)), 1); out.Verdict != analysis.Done {
		t.Fatalf("retry job: outcome %v: %v", out, out.Err)
	}
	if got := e.analysis(t, retryID).Actions.RetrySkipped; got != "the job is itself a retry" {
		t.Errorf("retry job: retry_skipped %q", got)
	}
	if n := len(e.bk.Retries()); n != 1 {
		t.Errorf("%d retries; want 1", n)
	}
	anns := e.bk.Annotations()
	last := anns[len(anns)-1].Body
	if !strings.Contains(last, "retried by kitefix") || !strings.Contains(last, "2 failed jobs") {
		t.Errorf("last annotation does not show both jobs and the retry:\n%s", last)
	}
}

func TestRetryRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		caps      connection.Capabilities
		autoRetry bool
		log       string
		flaky     []string
		wantRetry bool
		wantSkip  string
	}{
		{"infrastructure", allCaps, true, lostLog, nil, true, ""},
		{"auto retry off", allCaps, false, lostLog, nil, false, "AUTO_RETRY is off"},
		{"no write_builds", connection.Capabilities{}, true, lostLog, nil, false, "the token lacks the write_builds scope"},
		{"flaky in Test Engine", allCaps, true, testLog, []string{"TestWidgetSave"}, true, ""},
		{"other tests flaky", allCaps, true, testLog, []string{"TestOther"}, false, "a test failure with no test known to be flaky: a retry would fail the same way"},
		{"compile error", allCaps, true, "$ go build ./...\n./main.go:3:7: undefined: x\n🚨 Error: The command exited with status 1\n", nil, false, "a compile failure: a retry would fail the same way"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.caps, func(c *analysis.Config) { c.AutoRetry = tt.autoRetry })
			e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 9, time.Now(), "job-9"))
			e.bk.SetLogText("job-9", tt.log)
			e.bk.SetFlaky(tt.flaky...)
			if out := e.w.HandleBody(context.Background(), body(t, jobMessage(9, "job-9")), 1); out.Verdict != analysis.Done {
				t.Fatalf("outcome %v: %v", out, out.Err)
			}
			rec := e.analysis(t, "job-9")
			if got := rec.Actions.Retried != nil; got != tt.wantRetry {
				t.Errorf("retried %v, want %v (skip reason %q)", got, tt.wantRetry, rec.Actions.RetrySkipped)
			}
			if rec.Actions.RetrySkipped != tt.wantSkip {
				t.Errorf("retry_skipped %q, want %q", rec.Actions.RetrySkipped, tt.wantSkip)
			}
			if !tt.caps.Annotate && (rec.Actions.Annotated != nil || len(e.bk.Annotations()) != 0) {
				t.Errorf("annotated without write_builds")
			}
		})
	}
}

func TestSeenPassingOnSameCommitIsFlaky(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	// Job a failed TestWidgetSave; a retry of it passed on the same commit.
	b := analysistest.FailedBuild(testOrg, "web", 10, time.Now(), "a", "b")
	e.bk.AddBuild(b)
	e.bk.SetLogText("a", testLog)
	e.bk.SetLogText("b", testLog)
	e.w.HandleBody(context.Background(), body(t, jobMessage(10, "a")), 1)
	b, _ = e.bk.Build("web", 10)
	b.Jobs[0].Retried = true
	b.Jobs = append(b.Jobs, buildkite.Job{ID: "a2", Type: "script", State: "passed", StepKey: "step-1",
		RetrySource: &buildkite.RetrySource{JobID: "a", RetryType: "manual"}})
	e.bk.AddBuild(b)

	e.w.HandleBody(context.Background(), body(t, jobMessage(10, "b")), 1)
	rec := e.analysis(t, "b")
	if rec.Actions.Retried == nil || !strings.Contains(rec.Actions.Retried.Why, "seen passing on the same commit") {
		t.Errorf("job b: retried %+v, skipped %q; want a retry for a test seen passing", rec.Actions.Retried, rec.Actions.RetrySkipped)
	}
}

func TestFailureHandling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		setup       func(e *env)
		body        []byte
		receives    int
		wantVerdict analysis.Verdict
		wantDelay   [2]time.Duration // inclusive range
		wantState   analysis.State
		wantError   string
	}{
		{
			name:        "429 waits for RateLimit-Reset",
			setup:       func(e *env) { e.bk.Fail("/builds/11", analystest429(7)) },
			wantVerdict: analysis.Later, wantDelay: [2]time.Duration{7 * time.Second, 7 * time.Second},
		},
		{
			name:        "5xx backs off",
			setup:       func(e *env) { e.bk.Fail("/builds/11", analysistest.Fault{Status: 502, Times: 10}) },
			receives:    3,
			wantVerdict: analysis.Later, wantDelay: [2]time.Duration{30 * time.Second, 60 * time.Second},
		},
		{
			name:        "revoked token fails the connection and the job",
			setup:       func(e *env) { e.conns.token = "bkua_revokedrevokedrevokedrevokedrevoked00" },
			wantVerdict: analysis.Done, wantState: analysis.StateFailed, wantError: "Buildkite rejected the API token (401)",
		},
		{
			name:        "log gone",
			setup:       func(e *env) { e.bk.SetLog("job-11", nil) },
			wantVerdict: analysis.Done, wantState: analysis.StateFailed, wantError: "no longer has this job's log (404)",
		},
		{
			name: "log cut off",
			setup: func(e *env) {
				e.bk.SetLog("job-11", func() io.Reader { return io.MultiReader(strings.NewReader(testLog), errReader{}) })
			},
			receives:    3,
			wantVerdict: analysis.Done, wantState: analysis.StateFailed, wantError: "the log was cut off",
		},
		{
			name:        "job passed since",
			setup:       func(e *env) { b, _ := e.bk.Build("web", 11); b.Jobs[0].State = "passed"; e.bk.AddBuild(b) },
			wantVerdict: analysis.Done, wantState: analysis.StateSkipped,
		},
		{name: "bad JSON", body: []byte(`{"kind":"job",`), wantVerdict: analysis.Poison},
		{
			name:        "unknown tenant",
			body:        []byte(`{"kind":"job","tenant_id":"nobody","org":"acme","pipeline":"web","build_number":11,"build_id":"b","job_id":"job-11","reason":"webhook","queued_at":"2026-01-01T00:00:00Z"}`),
			wantVerdict: analysis.Poison,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, allCaps)
			e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 11, time.Now(), "job-11"))
			e.bk.SetLogText("job-11", testLog)
			if tt.setup != nil {
				tt.setup(e)
			}
			b := tt.body
			if b == nil {
				b = body(t, jobMessage(11, "job-11"))
			}
			out := e.w.HandleBody(context.Background(), b, max(tt.receives, 1))
			if out.Verdict != tt.wantVerdict {
				t.Fatalf("verdict %v (%v), want %v", out, out.Err, tt.wantVerdict)
			}
			if out.Verdict == analysis.Later && (out.Delay < tt.wantDelay[0] || out.Delay > tt.wantDelay[1]) {
				t.Errorf("delay %s, want within %v", out.Delay, tt.wantDelay)
			}
			rec, err := e.store.GetAnalysis(context.Background(), testTenant, "job:job-11")
			if tt.wantState == "" {
				if !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("an analysis was stored (%v, %v); want none", rec.State, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("get analysis: %v", err)
			}
			if rec.State != tt.wantState || !strings.Contains(rec.Error, tt.wantError) {
				t.Errorf("analysis state %s error %q; want %s with %q", rec.State, rec.Error, tt.wantState, tt.wantError)
			}
			if strings.Contains(rec.Error, testToken) {
				t.Errorf("the error holds the token")
			}
			if tt.name == "revoked token fails the connection and the job" {
				if c, _ := e.conns.GetConnection(context.Background(), testTenant); c.State != connection.StateFailed || e.conns.verified != 1 {
					t.Errorf("connection %s after %d verifies; want failed after 1", c.State, e.conns.verified)
				}
				// Its later messages fail at once, without Buildkite.
				calls := len(e.bk.Calls())
				e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 12, time.Now(), "job-12"))
				if out := e.w.HandleBody(context.Background(), body(t, jobMessage(12, "job-12")), 1); out.Verdict != analysis.Done {
					t.Errorf("next message: %v", out)
				}
				if n := len(e.bk.Calls()); n != calls {
					t.Errorf("next message called Buildkite %d times", n-calls)
				}
			}
		})
	}
}

func analystest429(reset int) analysistest.Fault {
	return analysistest.Fault{Status: 429, Header: map[string]string{"RateLimit-Reset": fmt.Sprint(reset)}}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

func TestBuildMessageExpands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	b := analysistest.FailedBuild(testOrg, "web", 13, time.Now(), "x", "y", "z")
	b.Jobs[2].State = "passed"
	e.bk.AddBuild(b)
	e.bk.SetLogText("x", testLog)
	e.bk.SetLogText("y", testLog)
	// y was queued on its own by a webhook.
	if err := e.dels.ClaimDelivery(context.Background(), testTenant, "job:y", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	m := queue.Message{Kind: queue.KindBuild, TenantID: testTenant, Org: testOrg, Pipeline: "web", BuildNumber: 13,
		BuildID: b.ID, Reason: queue.ReasonWebhook, QueuedAt: time.Now()}
	out := e.w.HandleBody(context.Background(), body(t, m), 1)
	if out.Verdict != analysis.Done || out.Jobs != 1 {
		t.Fatalf("outcome %v (%v), %d jobs; want done, 1", out, out.Err, out.Jobs)
	}
	e.analysis(t, "x")
	for _, id := range []string{"y", "z"} {
		if _, err := e.store.GetAnalysis(context.Background(), testTenant, "job:"+id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("job %s analyzed by the build message: %v", id, err)
		}
	}
}

func TestReconcileQueuesMissedJobsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 14, time.Now().Add(-10*time.Minute), "r1", "r2"))
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "api", 3, time.Now().Add(-3*time.Hour), "old"))
	if err := e.dels.ClaimDelivery(context.Background(), testTenant, "job:r1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	res, err := e.w.Reconcile(context.Background())
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if res.Queued != 1 || len(e.queue.sent) != 1 || e.queue.sent[0].JobID != "r2" || e.queue.sent[0].Reason != queue.ReasonReconcile {
		t.Fatalf("queued %d: %+v; want r2 only", res.Queued, e.queue.sent)
	}
	if res, err := e.w.Reconcile(context.Background()); err != nil || res.Queued != 0 {
		t.Errorf("second pass queued %d (%v); want 0", res.Queued, err)
	}
}

func TestBudgetHoldsAcrossWorkers(t *testing.T) {
	t.Parallel()
	store, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	window := time.Now().Truncate(time.Minute)
	var mu sync.Mutex
	taken := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				ok, err := store.TakeRequest(context.Background(), analysis.BudgetKey(testToken), window, analysis.RequestsPerMinute)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					taken++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if taken != analysis.RequestsPerMinute {
		t.Errorf("%d requests taken in one minute by 8 workers; want %d", taken, analysis.RequestsPerMinute)
	}
	if ok, _ := store.TakeRequest(context.Background(), analysis.BudgetKey(testToken), window.Add(time.Minute), analysis.RequestsPerMinute); !ok {
		t.Errorf("the next minute has no budget")
	}
}

func TestBudgetSpentSendsMessageBack(t *testing.T) {
	t.Parallel()
	// A clock held in the middle of a minute: the spent budget cannot
	// renew while the test runs.
	now := time.Now().Truncate(time.Minute).Add(30 * time.Second)
	e := newEnv(t, allCaps, func(c *analysis.Config) { c.Now = func() time.Time { return now } })
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 15, now, "job-15"))
	e.bk.SetLogText("job-15", testLog)
	for range analysis.RequestsPerMinute {
		if _, err := e.store.TakeRequest(context.Background(), analysis.BudgetKey(testToken), now.Truncate(time.Minute), analysis.RequestsPerMinute); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := e.w.HandleBody(ctx, body(t, jobMessage(15, "job-15")), 1)
	if out.Verdict != analysis.Later || out.Delay > time.Minute {
		t.Fatalf("outcome %v delay %s (%v); want later within a minute", out, out.Delay, out.Err)
	}
	if n := len(e.bk.Calls()); n != 0 {
		t.Errorf("%d Buildkite calls with the budget spent", n)
	}
}

func TestBaselineFromLastPassedBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps, func(c *analysis.Config) { c.NoBaseline = false })
	passed := analysistest.FailedBuild(testOrg, "web", 5, time.Now().Add(-time.Hour), "p-1")
	passed.State, passed.Jobs[0].State, passed.Jobs[0].ExitStatus = "passed", "passed", nil
	e.bk.AddBuild(passed)
	e.bk.SetLogText("p-1", "~~~ Running tests\n$ go test ./...\nok  \tgithub.com/acme/widgets\t0.204s\n")
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 6, time.Now(), "f-1", "f-2"))
	e.bk.SetLogText("f-1", testLog)
	e.bk.SetLogText("f-2", testLog)
	for _, id := range []string{"f-1", "f-2"} {
		if out := e.w.HandleBody(context.Background(), body(t, jobMessage(6, id)), 1); out.Verdict != analysis.Done {
			t.Fatalf("%s: outcome %v: %v", id, out, out.Err)
		}
	}
	if diff := cmp.Diff(&analysis.Baseline{BuildNumber: 5, JobID: "p-1"}, e.analysis(t, "f-1").Baseline); diff != "" {
		t.Errorf("baseline (-want +got):\n%s", diff)
	}
	// Job f-2 is another step: no passing job of it, so no baseline.
	if b := e.analysis(t, "f-2").Baseline; b != nil {
		t.Errorf("f-2 baseline %+v; want none", b)
	}
	if logs := e.logReads("p-1"); logs != 1 {
		t.Errorf("the passing log was fetched %d times; want 1", logs)
	}
}

func TestConcurrentJobsOfOneBuildShareOneAnnotation(t *testing.T) {
	t.Parallel()
	for run := range 3 {
		e := newEnv(t, allCaps)
		var ids []string
		for i := range 6 {
			ids = append(ids, fmt.Sprintf("c%d-%d", run, i))
		}
		e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 20, time.Now(), ids...))
		for i, id := range ids {
			log := testLog
			if i%2 == 1 {
				log = lostLog
			}
			e.bk.SetLogText(id, log)
		}
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out := e.w.HandleBody(context.Background(), body(t, jobMessage(20, id)), 1); out.Verdict != analysis.Done {
					t.Errorf("%s: %v %v", id, out, out.Err)
				}
			}()
		}
		wg.Wait()
		// Invariants: one analysis per job, the stored report and the last
		// annotation posted name every job, each lost agent retried once.
		rep, err := e.store.GetBuildReport(context.Background(), testTenant, "build-web-20")
		if err != nil || len(rep.Jobs) != len(ids) {
			t.Fatalf("run %d: report has %d jobs (%v); want %d", run, len(rep.Jobs), err, len(ids))
		}
		anns := e.bk.Annotations()
		last := anns[len(anns)-1].Body
		for _, id := range ids {
			if !strings.Contains(last, "#"+id+")") {
				t.Errorf("run %d: the last annotation does not link %s", run, id)
			}
			e.analysis(t, id)
		}
		if n := len(e.bk.Retries()); n != 3 {
			t.Errorf("run %d: %d retries; want 3", run, n)
		}
	}
}

func TestReconcileRacesBuildMessage(t *testing.T) {
	t.Parallel()
	for run := range 3 {
		e := newEnv(t, allCaps)
		var ids []string
		for i := range 5 {
			ids = append(ids, fmt.Sprintf("r%d-%d", run, i))
		}
		b := analysistest.FailedBuild(testOrg, "web", 70, time.Now(), ids...)
		e.bk.AddBuild(b)
		for _, id := range ids {
			e.bk.SetLogText(id, testLog)
		}
		buildMsg := queue.Message{Kind: queue.KindBuild, TenantID: testTenant, Org: testOrg, Pipeline: "web", BuildNumber: 70,
			BuildID: b.ID, Reason: queue.ReasonWebhook, QueuedAt: time.Now()}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					if _, err := e.w.Reconcile(context.Background()); err != nil {
						t.Errorf("reconcile: %v", err)
					}
					return
				}
				if out := e.w.HandleBody(context.Background(), body(t, buildMsg), 1); out.Verdict != analysis.Done {
					t.Errorf("build message: %v %v", out, out.Err)
				}
			}()
		}
		wg.Wait()
		// What reconcile queued is delivered now.
		for _, m := range e.queue.sent {
			if out := e.w.HandleBody(context.Background(), body(t, m), 1); out.Verdict != analysis.Done {
				t.Errorf("queued %s: %v %v", m.JobID, out, out.Err)
			}
		}
		logs := map[string]int{}
		for _, c := range e.bk.Calls() {
			if strings.HasSuffix(c, "/log") {
				logs[c]++
			}
		}
		for _, id := range ids {
			e.analysis(t, id)
			if n := logs["GET /v2/organizations/acme/pipelines/web/builds/70/jobs/"+id+"/log"]; n != 1 {
				t.Errorf("run %d: log of %s fetched %d times; want 1", run, id, n)
			}
		}
	}
}

func TestAnnotationRefusedIsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 80, time.Now(), "a80"))
	e.bk.SetLogText("a80", testLog)
	e.bk.Fail("/builds/80/annotations", analysistest.Fault{Status: 403})
	if out := e.w.HandleBody(context.Background(), body(t, jobMessage(80, "a80")), 1); out.Verdict != analysis.Done {
		t.Fatalf("outcome %v: %v", out, out.Err)
	}
	rec := e.analysis(t, "a80")
	if !rec.Reported || rec.Actions.Annotated != nil || !strings.HasPrefix(rec.Actions.AnnotationSkipped, "Buildkite refused the annotation") {
		t.Errorf("reported %v, actions %+v", rec.Reported, rec.Actions)
	}
	// A 5xx on the annotation sends the message back; the next delivery
	// finishes the report without analyzing again.
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 81, time.Now(), "a81"))
	e.bk.SetLogText("a81", testLog)
	e.bk.Fail("/builds/81/annotations", analysistest.Fault{Status: 503, Times: 4})
	if out := e.w.HandleBody(context.Background(), body(t, jobMessage(81, "a81")), 1); out.Verdict != analysis.Later {
		t.Fatalf("outcome %v: %v; want later", out, out.Err)
	}
	if rec := e.analysis(t, "a81"); rec.Reported {
		t.Fatalf("reported after a failed annotation")
	}
	// Within the report lease another delivery waits; after it, one
	// finishes the report.
	if out := e.w.HandleBody(context.Background(), body(t, jobMessage(81, "a81")), 2); out.Verdict != analysis.Later {
		t.Errorf("within the lease: %v; want later", out)
	}
	cfg := e.cfg
	cfg.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if out := analysis.New(cfg).HandleBody(context.Background(), body(t, jobMessage(81, "a81")), 3); out.Verdict != analysis.Done {
		t.Fatalf("after the lease: %v %v", out, out.Err)
	}
	if rec := e.analysis(t, "a81"); !rec.Reported || rec.Actions.Annotated == nil {
		t.Errorf("after the lease: reported %v, actions %+v", rec.Reported, rec.Actions)
	}
	if logs := e.logReads("a81"); logs != 1 {
		t.Errorf("the log was read %d times; want 1", logs)
	}
}

func TestBuildkiteTimeoutSendsMessageBack(t *testing.T) {
	t.Parallel()
	var bkURL string
	e := newEnv(t, allCaps, func(c *analysis.Config) {
		c.Buildkite = func(token string, lim buildkite.Limiter) analysis.Buildkite {
			return buildkite.New(token, buildkite.WithBaseURL(bkURL), buildkite.WithLimiter(lim),
				buildkite.WithTimeout(200*time.Millisecond), buildkite.WithBackoff(time.Millisecond, 2*time.Millisecond))
		}
	})
	bkURL = e.bk.URL
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 90, time.Now(), "t90"))
	e.bk.Fail("/builds/90", analysistest.Fault{Hang: true, Times: 10})
	out := e.w.HandleBody(context.Background(), body(t, jobMessage(90, "t90")), 2)
	if out.Verdict != analysis.Later || out.Delay < 15*time.Second || out.Delay > 30*time.Second {
		t.Errorf("outcome %v, delay %s (%v); want later after a 15–30 s backoff", out, out.Delay, out.Err)
	}
}

func TestClaimsAreLeasedThenConfirmed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 95, time.Now().Add(-time.Minute), "l1"))
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 96, time.Now().Add(-time.Hour-time.Minute), "l2"))
	e.bk.SetLogText("l2", testLog)
	if _, err := e.w.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := queue.Message{Kind: queue.KindBuild, TenantID: testTenant, Org: testOrg, Pipeline: "web", BuildNumber: 96,
		BuildID: "build-web-96", Reason: queue.ReasonWebhook, QueuedAt: time.Now()}
	if out := e.w.HandleBody(context.Background(), body(t, m), 1); out.Verdict != analysis.Done || out.Jobs != 1 {
		t.Fatalf("build message: %v (%v), %d jobs", out, out.Err, out.Jobs)
	}
	// Claimed for minutes (a process that dies in between leaves a claim
	// that lapses), then confirmed for a week once queued or analyzed.
	hour, week := time.Now().Add(time.Hour), time.Now().Add(6*24*time.Hour)
	for _, key := range []string{"job:l1", "job:l2"} {
		claimed, confirmed := e.dels.claimed[testTenant+"/"+key], e.dels.expiry(testTenant, key)
		if claimed.IsZero() || claimed.After(hour) || confirmed.Before(week) {
			t.Errorf("%s: claimed until %v, confirmed until %v; want a lease of minutes, then a week", key, claimed, confirmed)
		}
	}
}
