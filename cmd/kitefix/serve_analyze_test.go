package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/syncbuf"
	"github.com/kitefix/kitefix/shared/webhook"
)

const (
	analyzeToken = "bkua_5e7e0123456789abcdef0123456789abcdef0124"
	analyzeOrg   = "acme"
	unitLog      = "~~~ Running tests\n$ go test ./...\n=== RUN   TestWidgetSave\n    widget_test.go:42: save widget: got status 500, want 201\n--- FAIL: TestWidgetSave (0.03s)\nFAIL\n🚨 Error: The command exited with status 1\n"
	lostLog      = "~~~ Running tests\n$ make test\nrunning...\n# Exited with status -1 (process killed or agent lost; see the timeline tab for more information)\n"
)

// startServeWith runs `kitefix serve` with extra arguments and returns its
// URL and a stop function that waits for it to exit; it also stops when
// the test ends.
func startServeWith(t testing.TB, dataDir, bkURL string, args ...string) (string, *syncbuf.Buffer, func()) {
	t.Helper()
	url, stderr, stop := startServeStoppable(t, dataDir, bkURL, args...)
	t.Cleanup(stop)
	return url, stderr, stop
}

// waitAnalyses polls GET /v1/analyses until it lists n analyses.
func waitAnalyses(t *testing.T, url string, n int) []any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body, raw := call(t, "GET", url+"/v1/analyses?limit=100", "")
		if status != http.StatusOK {
			t.Fatalf("GET /v1/analyses = %d %s", status, raw)
		}
		list, _ := body["analyses"].([]any)
		if len(list) >= n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d analyses listed after 30 s; want %d", len(list), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeAnalyzesFailedJobs connects kitefix serve to a fake Buildkite
// whose webhooks never arrive: the reconcile loop finds the failed jobs,
// the worker analyzes them, annotates the build and retries the lost
// agent's job once; GET /v1/analyses lists them a page at a time.
func TestServeAnalyzesFailedJobs(t *testing.T) {
	bk := analysistest.New(t, analyzeToken, analyzeOrg)
	bk.AddBuild(analysistest.FailedBuild(analyzeOrg, "web", 3, time.Now(), "lost", "unit"))
	bk.SetLogText("lost", lostLog)
	bk.SetLogText("unit", unitLog)
	url, stderr, _ := startServeWith(t, t.TempDir(), bk.URL, "--reconcile-every", "100ms")
	if status, _, raw := call(t, "PUT", url+"/v1/integrations/buildkite", `{"token":"`+analyzeToken+`"}`); status != 200 {
		t.Fatalf("connect = %d %s", status, raw)
	}
	list := waitAnalyses(t, url, 2)
	byJob := map[string]map[string]any{}
	for _, a := range list {
		m := a.(map[string]any)
		byJob[m["job_id"].(string)] = m
	}
	if byJob["lost"]["category"] != "infrastructure" || byJob["unit"]["category"] != "test" {
		t.Errorf("categories: lost %v, unit %v", byJob["lost"]["category"], byJob["unit"]["category"])
	}
	// The report finishes just after the analysis is listed.
	deadline := time.Now().Add(10 * time.Second)
	for len(bk.Retries()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a wrong second retry
	if r := bk.Retries(); len(r) != 1 || r[0] != "lost" {
		t.Errorf("retries %v; want [lost]", r)
	}
	anns := bk.Annotations()
	if len(anns) == 0 || anns[len(anns)-1].Context != "kitefix" {
		t.Fatalf("annotations %v", anns)
	}

	status, body, raw := call(t, "GET", url+"/v1/analyses?limit=1", "")
	if status != 200 || body["next_cursor"] == nil || len(body["analyses"].([]any)) != 1 {
		t.Fatalf("first page = %d %s", status, raw)
	}
	status, body, raw = call(t, "GET", url+"/v1/analyses?limit=1&cursor="+body["next_cursor"].(string), "")
	if status != 200 || len(body["analyses"].([]any)) != 1 {
		t.Fatalf("second page = %d %s", status, raw)
	}
	if status, _, _ := call(t, "GET", url+"/v1/analyses?limit=500", ""); status != 400 {
		t.Errorf("limit=500: %d, want 400", status)
	}
	if strings.Contains(stderr.String(), analyzeToken) || strings.Contains(raw, analyzeToken) {
		t.Errorf("the token was logged or returned")
	}
}

// TestServeReturnsInFlightWorkOnShutdown stops kitefix serve while a job's
// log is still streaming: the job goes back to the durable queue and the
// restarted server finishes it.
func TestServeReturnsInFlightWorkOnShutdown(t *testing.T) {
	bk := analysistest.New(t, analyzeToken, analyzeOrg)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	started := make(chan struct{}, 1)
	bk.AddBuild(analysistest.FailedBuild(analyzeOrg, "web", 4, time.Now(), "slow"))
	bk.SetLog("slow", func() io.Reader {
		select {
		case started <- struct{}{}:
		default:
		}
		return io.MultiReader(strings.NewReader("~~~ Running tests\n"), blockingReader{release})
	})
	dataDir := t.TempDir()
	url, _, stop := startServeWith(t, dataDir, bk.URL, "--reconcile-every", "100ms")
	if status, _, raw := call(t, "PUT", url+"/v1/integrations/buildkite", `{"token":"`+analyzeToken+`"}`); status != 200 {
		t.Fatalf("connect = %d %s", status, raw)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatalf("the job's log was never requested")
	}
	stop() // returns once the in-flight job is back in the queue

	bk.SetLogText("slow", unitLog)
	url, _, _ = startServeWith(t, dataDir, bk.URL, "--reconcile-every", "0")
	list := waitAnalyses(t, url, 1)
	if a := list[0].(map[string]any); a["job_id"] != "slow" || a["state"] != "analyzed" {
		t.Errorf("after restart: %v", a)
	}
}

// blockingReader blocks until release is closed, then ends.
type blockingReader struct{ release chan struct{} }

func (b blockingReader) Read([]byte) (int, error) {
	<-b.release
	return 0, io.EOF
}

// TestServeWebhookToAnnotation sends kitefix serve a signed job.finished
// webhook for a job whose agent was lost: it is queued, analyzed, the
// build annotated and the job retried once.
func TestServeWebhookToAnnotation(t *testing.T) {
	bk := analysistest.New(t, analyzeToken, analyzeOrg)
	b := analysistest.FailedBuild(analyzeOrg, "web", 5, time.Now(), "hooked")
	bk.AddBuild(b)
	bk.SetLogText("hooked", lostLog)
	url, _, _ := startServeWith(t, t.TempDir(), bk.URL, "--reconcile-every", "0")
	status, body, raw := call(t, "PUT", url+"/v1/integrations/buildkite", `{"token":"`+analyzeToken+`"}`)
	if status != 200 {
		t.Fatalf("connect = %d %s", status, raw)
	}
	hook := body["webhook"].(map[string]any)
	payload := analysistest.JobFinished(analyzeOrg, b, "hooked")
	req, _ := http.NewRequest("POST", hook["url"].(string), bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Buildkite-Event", "job.finished")
	req.Header.Set("X-Buildkite-Signature", webhook.Sign(hook["secret"].(string), time.Now(), payload))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook = %d, want 202", resp.StatusCode)
	}
	list := waitAnalyses(t, url, 1)
	if a := list[0].(map[string]any); a["job_id"] != "hooked" || a["category"] != "infrastructure" {
		t.Errorf("analysis %v", a)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(bk.Retries()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r := bk.Retries(); len(r) != 1 || r[0] != "hooked" {
		t.Errorf("retries %v; want [hooked]", r)
	}
	if anns := bk.Annotations(); len(anns) != 1 || !strings.Contains(anns[0].Body, "agent lost") {
		t.Errorf("annotations %+v", anns)
	}
}
