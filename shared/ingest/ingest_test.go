package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/syncbuf"
	"github.com/kitefix/kitefix/shared/webhook"
)

const (
	testTenant   = "tenant-1"
	testHook     = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	testSecret   = "current-secret-0123456789abcdef0123456789abcdef"
	testPrevious = "previous-secret-0123456789abcdef0123456789abcdef"
	failedJobID  = "01987a3e-6a2b-4c3d-8e9f-0a1b2c3d4e5f"
	failedBuild  = "01987a3e-5c1f-4b8e-9d2a-3f4b5c6d7e80"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type harness struct {
	store *memStore
	h     *Handler
	logs  *syncbuf.Buffer
}

// newHarness connects testTenant with webhook testHook, whose keys are
// keys.
func newHarness(t *testing.T, keys connection.WebhookKeys) *harness {
	t.Helper()
	m := newMemStore()
	m.routes[testHook] = testTenant
	m.records[testTenant] = connection.Record{State: connection.StateConnected, Webhook: &connection.Webhook{ID: testHook}}
	m.secrets[connection.WebhookSecretName("kitefix/", testTenant)] = keys.Encode()
	logs := &syncbuf.Buffer{}
	h := New(Config{Routes: m, Secrets: m, Deliveries: m, Queue: m, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	return &harness{store: m, h: h, logs: logs}
}

func signed(event string, body []byte, secret string, at time.Time) Request {
	return Request{WebhookID: testHook, Event: event, Signature: webhook.Sign(secret, at, body), Body: body}
}

// logLine is the fixed part of a delivery's log line.
type logLine struct {
	Msg      string  `json:"msg"`
	Tenant   string  `json:"tenant"`
	Event    string  `json:"event"`
	Outcome  string  `json:"outcome"`
	Status   int     `json:"status"`
	Duration float64 `json:"duration_ms"`
	Check    string  `json:"check"`
	Org      string  `json:"org"`
	Pipeline string  `json:"pipeline"`
	Build    int     `json:"build"`
	Job      string  `json:"job"`
}

func (hs *harness) lastLog(t *testing.T) logLine {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(hs.logs.String()), "\n")
	var l logLine
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &l); err != nil {
		t.Fatalf("log line %q: %v", lines[len(lines)-1], err)
	}
	return l
}

func TestStatusTable(t *testing.T) {
	now := time.Now()
	jobFailed := fixture(t, "job-finished-failed.json")
	noPipeline := bytes.Replace(jobFailed, []byte(`"slug":"web"`), []byte(`"slug":""`), 1)
	noPipeline = bytes.Replace(noPipeline, []byte(`/pipelines/web`), []byte(`/pipelines/`), -1)
	big := append(bytes.Repeat([]byte(" "), MaxBody), '{', '}')
	tests := []struct {
		name   string
		keys   connection.WebhookKeys
		setup  func(*memStore)
		req    Request
		status int
		code   string // outcome in the response and the log
		check  string // the failed check the log names
		sent   int
	}{
		{"ping", connection.WebhookKeys{Current: testSecret}, nil, signed("ping", fixture(t, "ping.json"), testSecret, now), 200, "ping", "", 0},
		{"failed job", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", jobFailed, testSecret, now), 202, "queued", "", 1},
		{"failed job, token mode", connection.WebhookKeys{Current: testSecret}, nil, Request{WebhookID: testHook, Event: "job.finished", Token: testSecret, Body: jobFailed}, 202, "queued", "", 1},
		{"timed out job", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", fixture(t, "job-finished-timed-out.json"), testSecret, now), 202, "queued", "", 1},
		{"failed build", connection.WebhookKeys{Current: testSecret}, nil, signed("build.finished", fixture(t, "build-finished-failed.json"), testSecret, now), 202, "queued", "", 1},
		{"failing build", connection.WebhookKeys{Current: testSecret}, nil, signed("build.failing", fixture(t, "build-failing.json"), testSecret, now), 202, "queued", "", 1},
		{"passed job", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", fixture(t, "job-finished-passed.json"), testSecret, now), 200, "ignored", "", 0},
		{"soft failed job", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", fixture(t, "job-finished-soft-failed.json"), testSecret, now), 200, "ignored", "", 0},
		{"canceled job", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", fixture(t, "job-finished-canceled.json"), testSecret, now), 200, "ignored", "", 0},
		{"passed build", connection.WebhookKeys{Current: testSecret}, nil, signed("build.finished", fixture(t, "build-finished-passed.json"), testSecret, now), 200, "ignored", "", 0},
		{"other event", connection.WebhookKeys{Current: testSecret}, nil, signed("job.started", bytes.Replace(jobFailed, []byte("job.finished"), []byte("job.started"), 1), testSecret, now), 200, "ignored", "", 0},
		{"previous secret in grace", connection.WebhookKeys{Current: testSecret, Previous: testPrevious, PreviousUntil: now.Add(time.Hour)}, nil, signed("job.finished", jobFailed, testPrevious, now), 202, "queued", "", 1},
		{"previous secret after grace", connection.WebhookKeys{Current: testSecret, Previous: testPrevious, PreviousUntil: now.Add(-time.Second)}, nil, signed("job.finished", jobFailed, testPrevious, now), 401, "unauthorized", "signature_mismatch", 0},
		{"bad signature", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", jobFailed, "wrong", now), 401, "unauthorized", "signature_mismatch", 0},
		{"stale signature", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", jobFailed, testSecret, now.Add(-6*time.Minute)), 401, "unauthorized", "stale_timestamp", 0},
		{"future signature", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", jobFailed, testSecret, now.Add(6*time.Minute)), 401, "unauthorized", "stale_timestamp", 0},
		{"malformed signature", connection.WebhookKeys{Current: testSecret}, nil, Request{WebhookID: testHook, Event: "job.finished", Signature: "timestamp=1,signature=yo", Body: jobFailed}, 401, "unauthorized", "malformed_signature", 0},
		{"wrong token", connection.WebhookKeys{Current: testSecret}, nil, Request{WebhookID: testHook, Event: "job.finished", Token: "nope", Body: jobFailed}, 401, "unauthorized", "token_mismatch", 0},
		{"no credentials", connection.WebhookKeys{Current: testSecret}, nil, Request{WebhookID: testHook, Event: "job.finished", Body: jobFailed}, 401, "unauthorized", "no_credentials", 0},
		{"unknown webhook id", connection.WebhookKeys{Current: testSecret}, nil, func() Request {
			r := signed("job.finished", jobFailed, testSecret, now)
			r.WebhookID = "ffffffffffffffffffffffffffffffff"
			return r
		}(), 401, "unauthorized", "unknown_webhook", 0},
		{"webhook id of another shape", connection.WebhookKeys{Current: testSecret}, nil, func() Request {
			r := signed("job.finished", jobFailed, testSecret, now)
			r.WebhookID = strings.Repeat("x", 4096)
			return r
		}(), 401, "unauthorized", "unknown_webhook", 0},
		{"disconnected tenant", connection.WebhookKeys{Current: testSecret}, func(m *memStore) {
			m.records[testTenant] = connection.Record{State: connection.StateDisconnected}
		}, signed("job.finished", jobFailed, testSecret, now), 401, "unauthorized", "not_connected", 0},
		{"failed connection", connection.WebhookKeys{Current: testSecret}, func(m *memStore) {
			m.records[testTenant] = connection.Record{State: connection.StateFailed, Webhook: &connection.Webhook{ID: testHook}}
		}, signed("job.finished", jobFailed, testSecret, now), 401, "unauthorized", "not_connected", 0},
		{"disconnected tenant, malformed body", connection.WebhookKeys{Current: testSecret}, func(m *memStore) {
			m.records[testTenant] = connection.Record{State: connection.StateDisconnected}
		}, signed("job.finished", []byte(`{"event":`), testSecret, now), 401, "unauthorized", "not_connected", 0},
		{"no webhook secret", connection.WebhookKeys{Current: testSecret}, func(m *memStore) { clear(m.secrets) },
			signed("job.finished", jobFailed, testSecret, now), 401, "unauthorized", "no_webhook_secret", 0},
		{"missing event header", connection.WebhookKeys{Current: testSecret}, nil, signed("", jobFailed, testSecret, now), 400, "malformed_request", "", 0},
		{"malformed JSON", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", []byte(`{"event":"job.finished",`), testSecret, now), 400, "malformed_request", "", 0},
		{"header and body disagree", connection.WebhookKeys{Current: testSecret}, nil, signed("build.finished", jobFailed, testSecret, now), 400, "malformed_request", "", 0},
		{"failed job without its pipeline", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", noPipeline, testSecret, now), 400, "malformed_request", "", 0},
		{"too large", connection.WebhookKeys{Current: testSecret}, nil, signed("job.finished", big, testSecret, now), 413, "payload_too_large", "", 0},
		{"route store down", connection.WebhookKeys{Current: testSecret}, func(m *memStore) { m.failRoute = true }, signed("job.finished", jobFailed, testSecret, now), 503, "storage_unavailable", "", 0},
		{"claim store down", connection.WebhookKeys{Current: testSecret}, func(m *memStore) { m.failClaim = true }, signed("job.finished", jobFailed, testSecret, now), 503, "storage_unavailable", "", 0},
		{"queue down", connection.WebhookKeys{Current: testSecret}, func(m *memStore) { m.failSend = true }, signed("job.finished", jobFailed, testSecret, now), 503, "storage_unavailable", "", 0},
	}
	unauthorizedBodies := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.keys)
			if tt.setup != nil {
				hs.store.set(tt.setup)
			}
			resp := hs.h.Handle(context.Background(), tt.req)
			if resp.Status != tt.status {
				t.Errorf("status %d, want %d (body %s)", resp.Status, tt.status, resp.Body)
			}
			var body struct {
				Outcome string `json:"outcome"`
				Error   *struct {
					Code, Message string
				} `json:"error"`
			}
			if err := json.Unmarshal(resp.Body, &body); err != nil {
				t.Fatalf("body %s: %v", resp.Body, err)
			}
			gotCode := body.Outcome
			if body.Error != nil {
				gotCode = body.Error.Code
				if body.Error.Message == "" {
					t.Errorf("error without a message")
				}
			}
			if gotCode != tt.code {
				t.Errorf("code %q, want %q", gotCode, tt.code)
			}
			if tt.status == 401 {
				unauthorizedBodies[string(resp.Body)] = true
			}
			if got := hs.store.sentCount(); got != tt.sent {
				t.Errorf("%d messages sent, want %d", got, tt.sent)
			}
			l := hs.lastLog(t)
			want := logLine{Msg: "webhook delivery", Event: tt.req.Event, Outcome: tt.code, Status: tt.status, Check: tt.check}
			if tt.check != "unknown_webhook" && tt.status != 413 && tt.name != "route store down" {
				want.Tenant = testTenant
			}
			got := logLine{Msg: l.Msg, Tenant: l.Tenant, Event: l.Event, Outcome: l.Outcome, Status: l.Status, Check: l.Check}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("log line (-want +got):\n%s", diff)
			}
			logs := hs.logs.String()
			for _, s := range []string{testSecret, testPrevious, tt.req.Signature, tt.req.Token} {
				if s != "" && (strings.Contains(logs, s) || strings.Contains(string(resp.Body), s)) {
					t.Errorf("a secret, token or signature appears in the log or the response")
				}
			}
			if strings.Count(strings.TrimSpace(logs), "\n") != 0 {
				t.Errorf("%d log lines, want one:\n%s", strings.Count(logs, "\n"), logs)
			}
		})
	}
	if len(unauthorizedBodies) != 1 {
		t.Errorf("401 answers differ: %v", unauthorizedBodies)
	}
}

func TestQueuedMessageAndLogKeys(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	now := time.Now()
	resp := hs.h.Handle(context.Background(), signed("job.finished", fixture(t, "job-finished-failed.json"), testSecret, now))
	if resp.Status != 202 {
		t.Fatalf("status %d %s", resp.Status, resp.Body)
	}
	m, err := queue.Decode(hs.store.sent[0])
	if err != nil {
		t.Fatal(err)
	}
	m.QueuedAt = time.Time{}
	want := queue.Message{Kind: queue.KindJob, TenantID: testTenant, Org: "acme-inc", Pipeline: "web", BuildNumber: 1234,
		BuildID: failedBuild, JobID: failedJobID, Reason: queue.ReasonWebhook}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if got, want := hs.store.dedupeIDs[0], DedupeID(testTenant, "job:"+failedJobID); got != want || len(got) > 128 {
		t.Errorf("dedupe id %q, want %q (at most 128 characters)", got, want)
	}
	l := hs.lastLog(t)
	got := logLine{Org: l.Org, Pipeline: l.Pipeline, Build: l.Build, Job: l.Job}
	if diff := cmp.Diff(logLine{Org: "acme-inc", Pipeline: "web", Build: 1234, Job: failedJobID}, got); diff != "" {
		t.Errorf("log keys (-want +got):\n%s", diff)
	}
	if l.Duration < 0 {
		t.Errorf("duration_ms %v", l.Duration)
	}
	if hs.store.noted[testTenant].IsZero() {
		t.Errorf("the delivery time was not noted")
	}
}

func TestDuplicateIsQueuedOnce(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	req := signed("job.finished", fixture(t, "job-finished-failed.json"), testSecret, time.Now())
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = hs.h.Handle(context.Background(), req).Status })
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if diff := cmp.Diff(map[int]int{202: 1, 200: n - 1}, count); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if got := hs.store.sentCount(); got != 1 {
		t.Errorf("%d messages sent, want 1", got)
	}
}

func TestFailedSendReleasesTheClaim(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	req := signed("job.finished", fixture(t, "job-finished-failed.json"), testSecret, time.Now())
	hs.store.set(func(m *memStore) { m.failSend = true })
	if resp := hs.h.Handle(context.Background(), req); resp.Status != 503 {
		t.Fatalf("status %d, want 503", resp.Status)
	}
	if hs.store.claimed(testTenant, "job:"+failedJobID) {
		t.Fatalf("the claim stayed after the send failed")
	}
	// Buildkite (or the reconcile pass) tries again: now it is queued.
	hs.store.set(func(m *memStore) { m.failSend = false })
	if resp := hs.h.Handle(context.Background(), req); resp.Status != 202 {
		t.Fatalf("retry: status %d, want 202", resp.Status)
	}
	if got := hs.store.sentCount(); got != 1 {
		t.Errorf("%d messages sent, want 1", got)
	}

	// A release that fails too is reported in the log line.
	hs2 := newHarness(t, connection.WebhookKeys{Current: testSecret})
	hs2.store.set(func(m *memStore) { m.failSend, m.failRelease = true, true })
	if resp := hs2.h.Handle(context.Background(), req); resp.Status != 503 {
		t.Fatalf("status %d, want 503", resp.Status)
	}
	if !strings.Contains(hs2.logs.String(), "release claim") {
		t.Errorf("the log does not say the claim was kept:\n%s", hs2.logs.String())
	}
}

func TestKeysAreCachedAndReloadedAfterRotation(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	clock := time.Now()
	hs.h.cfg.Now = func() time.Time { return clock }
	ping := fixture(t, "ping.json")
	for range 3 {
		if resp := hs.h.Handle(context.Background(), signed("ping", ping, testSecret, clock)); resp.Status != 200 {
			t.Fatalf("ping: %d", resp.Status)
		}
	}
	if hs.store.secretReads != 1 {
		t.Errorf("%d secret reads for 3 deliveries, want 1 (cached)", hs.store.secretReads)
	}
	if hs.store.recordReads != 3 {
		t.Errorf("%d record reads for 3 deliveries, want 3 (a disconnect counts at once)", hs.store.recordReads)
	}

	// Rotate: the next delivery is signed with the new secret.
	const rotated = "rotated-secret-0123456789abcdef0123456789abcdef"
	keys := connection.WebhookKeys{Current: testSecret}.Rotated(rotated, clock)
	hs.store.set(func(m *memStore) { m.secrets[connection.WebhookSecretName("kitefix/", testTenant)] = keys.Encode() })
	clock = clock.Add(reloadAfter)
	if resp := hs.h.Handle(context.Background(), signed("ping", ping, rotated, clock)); resp.Status != 200 {
		t.Fatalf("ping with the new secret: %d", resp.Status)
	}
	// Forged deliveries right after do not read the secret again.
	reads := hs.store.secretReads
	for range 5 {
		if resp := hs.h.Handle(context.Background(), signed("ping", ping, "forged", clock)); resp.Status != 401 {
			t.Fatalf("forged: %d", resp.Status)
		}
	}
	if hs.store.secretReads != reads {
		t.Errorf("forged deliveries read the secret %d more times, want 0", hs.store.secretReads-reads)
	}
	// The old secret still verifies during the grace, and not after.
	if resp := hs.h.Handle(context.Background(), signed("ping", ping, testSecret, clock)); resp.Status != 200 {
		t.Errorf("previous secret in grace: %d", resp.Status)
	}
	clock = clock.Add(connection.RotationGrace)
	if resp := hs.h.Handle(context.Background(), signed("ping", ping, testSecret, clock)); resp.Status != 401 {
		t.Errorf("previous secret after grace: %d", resp.Status)
	}
}

func TestKeyCacheIsBounded(t *testing.T) {
	c := newKeyCache()
	now := time.Now()
	for i := range maxCachedKeys + 10 {
		c.put(strings.Repeat("x", i), &webhookKeys{loadedAt: now}, now)
	}
	if len(c.entries) > maxCachedKeys {
		t.Errorf("%d entries, want at most %d", len(c.entries), maxCachedKeys)
	}
	if c.get("", now.Add(keyTTL)) != nil {
		t.Errorf("an entry %s old is still served", keyTTL)
	}
}

func TestLambdaAdapter(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	body := fixture(t, "job-finished-failed.json")
	sig := webhook.Sign(testSecret, time.Now(), body)
	req := func(path, method string, b64 bool) events.LambdaFunctionURLRequest {
		r := events.LambdaFunctionURLRequest{
			RawPath: path,
			Headers: map[string]string{"x-buildkite-event": "job.finished", "X-BUILDKITE-SIGNATURE": sig},
			Body:    string(body),
		}
		r.RequestContext.HTTP.Method = method
		if b64 {
			r.Body, r.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
		return r
	}
	tests := []struct {
		name string
		req  events.LambdaFunctionURLRequest
		want int
	}{
		{"base64 body", req("/hooks/"+testHook, "POST", true), 202},
		{"plain body, duplicate", req("/hooks/"+testHook, "POST", false), 200},
		{"other path", req("/hooks/"+testHook+"/x", "POST", false), 404},
		{"no id", req("/hooks/", "POST", false), 404},
		{"GET", req("/hooks/"+testHook, "GET", false), 405},
		{"bad base64", func() events.LambdaFunctionURLRequest {
			r := req("/hooks/"+testHook, "POST", true)
			r.Body = "%%%"
			return r
		}(), 400},
		{"base64 too large", func() events.LambdaFunctionURLRequest {
			r := req("/hooks/"+testHook, "POST", true)
			r.Body = base64.StdEncoding.EncodeToString(make([]byte, MaxBody+10))
			return r
		}(), 413},
	}
	for _, tt := range tests {
		resp, err := hs.h.Lambda(context.Background(), tt.req)
		if err != nil || resp.StatusCode != tt.want || resp.Headers["Content-Type"] != "application/json" {
			t.Errorf("%s: %d %v %v, want %d application/json", tt.name, resp.StatusCode, resp.Headers, err, tt.want)
		}
	}
}

func TestHTTPAdapter(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	mux := http.NewServeMux()
	mux.Handle("/hooks/{id}", hs.h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := fixture(t, "ping.json")
	post := func(path string, body []byte, event bool) int {
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		if event {
			req.Header.Set("X-Buildkite-Event", "ping")
		}
		req.Header.Set("X-Buildkite-Signature", webhook.Sign(testSecret, time.Now(), body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode
	}
	if got := post("/hooks/"+testHook, body, true); got != 200 {
		t.Errorf("ping: %d, want 200", got)
	}
	if got := post("/hooks/"+testHook, body, false); got != 400 {
		t.Errorf("no event header: %d, want 400", got)
	}
	if got := post("/hooks/"+testHook, make([]byte, MaxBody+1), true); got != 413 {
		t.Errorf("too large: %d, want 413", got)
	}
	resp, err := srv.Client().Get(srv.URL + "/hooks/" + testHook)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q, want 405 POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// slowQueue blocks each send until its context ends.
type slowQueue struct{ *memStore }

func (q slowQueue) Send(ctx context.Context, _ []byte, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestSendTimeoutLeavesTimeToRelease(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	h := New(Config{Routes: hs.store, Secrets: hs.store, Deliveries: hs.store, Queue: slowQueue{hs.store}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*releaseReserve+time.Second)
	defer cancel()
	resp := h.Handle(ctx, signed("job.finished", fixture(t, "job-finished-failed.json"), testSecret, time.Now()))
	if resp.Status != 503 {
		t.Fatalf("status %d, want 503", resp.Status)
	}
	if ctx.Err() != nil {
		t.Errorf("the send used the whole deadline: nothing left to undo the claim")
	}
	if hs.store.claimed(testTenant, "job:"+failedJobID) {
		t.Errorf("the claim stayed after the send timed out")
	}
}

// crashingQueue stops the delivery's goroutine inside the send, as a
// function killed between claim and send would: nothing after it runs.
type crashingQueue struct{ *memStore }

func (crashingQueue) Send(context.Context, []byte, string) error {
	runtime.Goexit()
	return nil
}

func TestCrashAfterClaimLeavesOnlyALease(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	now := time.Now()
	hs.store.set(func(m *memStore) { m.now = func() time.Time { return now } })
	clock := func() time.Time { return now }
	req := signed("job.finished", fixture(t, "job-finished-failed.json"), testSecret, now)
	key := "job:" + failedJobID

	crashing := New(Config{Routes: hs.store, Secrets: hs.store, Deliveries: hs.store, Queue: crashingQueue{hs.store}, Now: clock})
	done := make(chan struct{})
	go func() {
		defer close(done)
		crashing.Handle(context.Background(), req)
		t.Error("Handle returned after the send crashed")
	}()
	<-done
	if got, limit := hs.store.claimExpiry(testTenant, key), now.Add(ClaimLease); got.IsZero() || got.After(limit) {
		t.Fatalf("claim left by the crash lapses at %v; want by %v (now + ClaimLease)", got, limit)
	}

	// Within the lease the work counts as queued; after it, the next
	// attempt (a redelivery or the reconcile pass) queues it.
	h := New(Config{Routes: hs.store, Secrets: hs.store, Deliveries: hs.store, Queue: hs.store, Now: clock})
	if resp := h.Handle(context.Background(), req); resp.Status != 200 {
		t.Fatalf("delivery within the lease: status %d, want 200 (duplicate)", resp.Status)
	}
	now = now.Add(ClaimLease + time.Second)
	req = signed("job.finished", fixture(t, "job-finished-failed.json"), testSecret, now)
	if resp := h.Handle(context.Background(), req); resp.Status != 202 {
		t.Fatalf("delivery after the lease lapsed: status %d, want 202", resp.Status)
	}
	if got := hs.store.sentCount(); got != 1 {
		t.Errorf("%d messages sent, want 1", got)
	}
	// Queued: the claim now lasts ClaimTTL, so redeliveries are duplicates.
	if got, want := hs.store.claimExpiry(testTenant, key), now.Add(ClaimTTL); !got.Equal(want) {
		t.Errorf("claim after the send lapses at %v; want %v", got, want)
	}
}

func TestFailedConfirmStillAnswersQueued(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	hs.store.set(func(m *memStore) { m.failConfirm = true })
	resp := hs.h.Handle(context.Background(), signed("job.finished", fixture(t, "job-finished-failed.json"), testSecret, time.Now()))
	if resp.Status != 202 {
		t.Fatalf("status %d, want 202: the message is on the queue", resp.Status)
	}
	if got := hs.store.sentCount(); got != 1 {
		t.Errorf("%d messages sent, want 1", got)
	}
	if !strings.Contains(hs.logs.String(), "confirm delivery claim") {
		t.Errorf("the log does not say the claim was not confirmed:\n%s", hs.logs.String())
	}
}

// The webhook a reconnect makes starts with no delivery noted (a disconnect
// forgets the note): its first delivery is noted at once, however soon
// after the old webhook's last one.
func TestNewWebhookFirstDeliveryIsNoted(t *testing.T) {
	hs := newHarness(t, connection.WebhookKeys{Current: testSecret})
	clock := time.Now()
	hs.h.cfg.Now = func() time.Time { return clock }
	ping := fixture(t, "ping.json")
	if resp := hs.h.Handle(context.Background(), signed("ping", ping, testSecret, clock)); resp.Status != 200 {
		t.Fatalf("ping: %d", resp.Status)
	}
	const newHook = "fedcba9876543210fedcba9876543210"
	hs.store.set(func(m *memStore) {
		delete(m.noted, testTenant)
		delete(m.routes, testHook)
		m.routes[newHook] = testTenant
		m.records[testTenant] = connection.Record{State: connection.StateConnected, Webhook: &connection.Webhook{ID: newHook}}
	})
	clock = clock.Add(10 * time.Second)
	req := signed("ping", ping, testSecret, clock)
	req.WebhookID = newHook
	if resp := hs.h.Handle(context.Background(), req); resp.Status != 200 {
		t.Fatalf("ping on the new webhook: %d", resp.Status)
	}
	hs.store.mu.Lock()
	got := hs.store.noted[testTenant]
	hs.store.mu.Unlock()
	if !got.Equal(clock) {
		t.Errorf("last delivery noted %v, want %v (the new webhook's first)", got, clock)
	}
}
