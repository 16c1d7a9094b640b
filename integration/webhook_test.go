package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/ingest"
	"github.com/kitefix/kitefix/shared/ingest/ingesttest"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/secretstore"
	"github.com/kitefix/kitefix/shared/sqsqueue"
	"github.com/kitefix/kitefix/shared/syncbuf"
	"github.com/kitefix/kitefix/shared/webhook"
)

// The ids the webhook samples carry (see events/webhook-*.json).
const (
	sampleHookID  = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	sampleJobID   = "01987a3e-6a2b-4c3d-8e9f-0a1b2c3d4e5f"
	sampleBuildID = "01987a3e-5c1f-4b8e-9d2a-3f4b5c6d7e80"
)

func TestDeliveriesContract(t *testing.T) {
	t.Run("dynamodb on kumo", func(t *testing.T) {
		env := startKumo(t)
		ingesttest.RunDeliveries(t, func(t *testing.T) ingesttest.Store { return dynamostore.New(env.DynamoDB, env.Table) })
	})
	t.Run("dynamodb on moto", func(t *testing.T) {
		env := startMoto(t)
		ingesttest.RunDeliveries(t, func(t *testing.T) ingesttest.Store { return dynamostore.New(env.DynamoDB, env.Table) })
	})
	t.Run("local", func(t *testing.T) {
		ingesttest.RunDeliveries(t, func(t *testing.T) ingesttest.Store {
			s, err := localstore.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

// seedWebhookTenant connects tenant with webhook id hookID and secret in
// records and secrets, as a connect would have left them.
func seedWebhookTenant(t *testing.T, records connection.Records, secrets connection.Secrets, prefix, tenant, hookID, secret string) {
	t.Helper()
	ctx := context.Background()
	if err := records.PutWebhookRoute(ctx, hookID, tenant); err != nil {
		t.Fatal(err)
	}
	rec := connection.Record{
		Tenant: tenant, State: connection.StateConnected,
		Webhook: &connection.Webhook{ID: hookID, URL: webhookBaseURL + "/hooks/" + hookID},
	}
	if err := records.PutConnection(ctx, rec); err != nil {
		t.Fatal(err)
	}
	keys := connection.WebhookKeys{Current: secret}
	if err := secrets.PutSecret(ctx, connection.WebhookSecretName(prefix, tenant), keys.Encode()); err != nil {
		t.Fatal(err)
	}
}

// sampleFailedJob is the body of the failed-job sample delivery.
func sampleFailedJob(t *testing.T) []byte {
	t.Helper()
	var ev events.LambdaFunctionURLRequest
	readEvent(t, "webhook-job-finished-failed.json", &ev)
	return []byte(ev.Body)
}

// TestWebhookOnAWSAdapters runs the handler over DynamoDB, Secrets Manager
// and SQS on kumo: the same delivery sent concurrently is queued once, and
// an enqueue that fails undoes its claim so the next attempt queues it.
func TestWebhookOnAWSAdapters(t *testing.T) {
	ctx := context.Background()
	k := startKumo(t)
	store := dynamostore.New(k.DynamoDB, k.Table)
	secrets := secretstore.New(k.Secrets)
	prefix := uniqueName("kitefix") + "/"
	tenant := uniqueName("tenant")
	seedWebhookTenant(t, store, secrets, prefix, tenant, sampleHookID, webhookTestSecret)
	queueURL := createQueue(t, k, false)
	newHandler := func(url string) *ingest.Handler {
		return ingest.New(ingest.Config{
			Routes: store, Secrets: secrets, Deliveries: store,
			Queue: sqsqueue.New(k.SQS, url), SecretPrefix: prefix,
		})
	}
	body := sampleFailedJob(t)
	req := ingest.Request{WebhookID: sampleHookID, Event: "job.finished", Signature: webhook.Sign(webhookTestSecret, time.Now(), body), Body: body}

	// The queue does not exist: the send fails, the claim is undone.
	resp := newHandler(queueURL+"-missing").Handle(ctx, req)
	if resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("with the queue missing: %d %s, want 503", resp.Status, resp.Body)
	}
	if has, err := store.HasDelivery(ctx, tenant, "job:"+sampleJobID); err != nil || has {
		t.Fatalf("claim after a failed send = %t, %v; want released", has, err)
	}

	h := newHandler(queueURL)
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = h.Handle(ctx, req).Status })
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if diff := cmp.Diff(map[int]int{202: 1, 200: n - 1}, count); diff != "" {
		t.Errorf("statuses of %d identical deliveries (-want +got):\n%s", n, diff)
	}
	bodies := receiveAll(t, k, queueURL)
	if len(bodies) != 1 {
		t.Fatalf("%d messages on the queue, want 1", len(bodies))
	}
	m, err := queue.Decode([]byte(bodies[0]))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != queue.KindJob || m.TenantID != tenant || m.JobID != sampleJobID || m.BuildID != sampleBuildID || m.Org != "acme-inc" || m.Pipeline != "web" || m.BuildNumber != 1234 {
		t.Errorf("message %+v", m)
	}
	if has, err := store.HasDelivery(ctx, tenant, "job:"+sampleJobID); err != nil || !has {
		t.Errorf("claim after queueing = %t, %v; want kept", has, err)
	}
	if at, err := store.LastDelivery(ctx, tenant); err != nil || at.IsZero() || time.Since(at) > time.Minute {
		t.Errorf("last delivery = %v, %v; want just now", at, err)
	}
}

// resign gives a sample delivery a timestamp of now, signed with secret, so
// it passes the five-minute window: the samples are signed at fixed times
// in the past. A sample whose signature is deliberately wrong keeps it
// wrong (only its timestamp changes).
func resign(t *testing.T, ev *events.LambdaFunctionURLRequest, secret string, keepSignature bool) {
	t.Helper()
	now := time.Now()
	if keepSignature {
		sig := ev.Headers["x-buildkite-signature"]
		ev.Headers["x-buildkite-signature"] = regexp.MustCompile(`timestamp=\d+`).ReplaceAllString(sig, "timestamp="+strconv.FormatInt(now.Unix(), 10))
		return
	}
	ev.Headers["x-buildkite-signature"] = webhook.Sign(secret, now, []byte(ev.Body))
}

// invokeEvent sends ev to the function and returns its function URL
// response.
func (f *lambdaFunction) invokeEvent(t *testing.T, ev events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp, err := f.client.Post(f.url, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke %s: %v", f.name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke %s: %s %v: %s", f.name, resp.Status, err, raw)
	}
	var out events.LambdaFunctionURLResponse
	if err := decodeStrict(raw, &out); err != nil {
		t.Fatalf("invoke %s: result is not a function URL response: %v: %s", f.name, err, raw)
	}
	return out
}

// deliveryLog is the fixed part of the function's line per delivery.
type deliveryLog struct {
	Msg     string `json:"msg"`
	Tenant  string `json:"tenant"`
	Event   string `json:"event"`
	Outcome string `json:"outcome"`
	Status  int    `json:"status"`
	Check   string `json:"check"`
}

// deliveryLogs returns the "webhook delivery" lines of output, in order.
func deliveryLogs(output string) []deliveryLog {
	var out []deliveryLog
	for _, line := range strings.Split(output, "\n") {
		var l deliveryLog
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "webhook delivery" {
			out = append(out, l)
		}
	}
	return out
}

// TestWebhookFunctionOutcomes runs the webhook bootstrap under the Lambda
// Runtime Interface Emulator against kumo and sends it every sample
// delivery: each gets the status its case calls for, the function logs
// which check refused it, and exactly the failed job and the failed build
// reach the queue. Samples are re-signed with a fresh timestamp (see
// resign) except the stale one, whose old timestamp is the point.
func TestWebhookFunctionOutcomes(t *testing.T) {
	ctx := context.Background()
	k := startKumo(t)
	prefix := uniqueName("kitefix") + "/"
	store := dynamostore.New(k.DynamoDB, k.Table)
	seedWebhookTenant(t, store, secretstore.New(k.Secrets), prefix, sampleTenant, sampleHookID, webhookTestSecret)
	queueURL := createQueue(t, k, false)
	fn := startFunction(t, "webhook", functionEnv(t, "webhook", k, queueURL, prefix, "http://127.0.0.1:9"))

	tests := []struct {
		file    string
		resign  string // "fresh", "timestamp only" or "" (as stored)
		status  int
		outcome string
		check   string
	}{
		{"webhook-ping.json", "fresh", 200, "ping", ""},
		{"webhook-job-finished-failed.json", "fresh", 202, "queued", ""},
		{"webhook-token.json", "", 200, "duplicate", ""},
		{"webhook-job-finished-passed.json", "fresh", 200, "ignored", ""},
		{"webhook-build-finished-failed.json", "fresh", 202, "queued", ""},
		{"webhook-bad-signature.json", "timestamp only", 401, "unauthorized", "signature_mismatch"},
		{"webhook-stale-timestamp.json", "", 401, "unauthorized", "stale_timestamp"},
		{"webhook-unknown-id.json", "fresh", 401, "unauthorized", "unknown_webhook"},
		{"webhook-malformed.json", "fresh", 400, "malformed_request", ""},
		{"webhook-missing-event.json", "fresh", 400, "malformed_request", ""},
	}
	unauthorized := map[string]bool{}
	for _, tt := range tests {
		var ev events.LambdaFunctionURLRequest
		readEvent(t, tt.file, &ev)
		switch tt.resign {
		case "fresh":
			resign(t, &ev, webhookTestSecret, false)
		case "timestamp only":
			resign(t, &ev, webhookTestSecret, true)
		}
		resp := fn.invokeEvent(t, ev)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.file, resp.StatusCode, tt.status, resp.Body)
		}
		if resp.Headers["Content-Type"] != "application/json" || !json.Valid([]byte(resp.Body)) {
			t.Errorf("%s: %v %q, want a JSON body", tt.file, resp.Headers, resp.Body)
		}
		if tt.status == 401 {
			unauthorized[resp.Body] = true
		}
		if strings.Contains(resp.Body, webhookTestSecret) {
			t.Errorf("%s: the response holds the secret", tt.file)
		}
	}
	if len(unauthorized) != 1 {
		t.Errorf("the 401 answers differ: %v", unauthorized)
	}

	// The emulator relays the function's output through a pipe: wait for
	// the last line.
	logs := deliveryLogs(fn.output.String())
	for deadline := time.Now().Add(10 * time.Second); len(logs) < len(tests) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		logs = deliveryLogs(fn.output.String())
	}
	if len(logs) != len(tests) {
		t.Fatalf("%d delivery log lines for %d deliveries:\n%s", len(logs), len(tests), fn.output)
	}
	for i, tt := range tests {
		want := deliveryLog{Msg: "webhook delivery", Tenant: sampleTenant, Outcome: tt.outcome, Status: tt.status, Check: tt.check}
		if tt.check == "unknown_webhook" {
			want.Tenant = ""
		}
		got := logs[i]
		got.Event = ""
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: log line (-want +got):\n%s", tt.file, diff)
		}
	}
	if strings.Contains(fn.output.String(), webhookTestSecret) {
		t.Errorf("the function's output holds the webhook secret")
	}

	var got []string
	for _, b := range receiveAll(t, k, queueURL) {
		m, err := queue.Decode([]byte(b))
		if err != nil {
			t.Fatalf("queued message: %v", err)
		}
		got = append(got, string(m.Kind)+" "+m.BuildID+" "+m.JobID)
	}
	want := []string{"build " + sampleBuildID + " ", "job " + sampleBuildID + " " + sampleJobID}
	if diff := cmp.Diff(want, got, cmpSorted); diff != "" {
		t.Errorf("queued (-want +got):\n%s", diff)
	}
	if at, err := store.LastDelivery(ctx, sampleTenant); err != nil || at.IsZero() {
		t.Errorf("last delivery = %v, %v; want noted", at, err)
	}
}

var cmpSorted = cmp.Transformer("sorted", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// kitefixBinary builds cmd/kitefix once for the test.
func kitefixBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kitefix")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kitefix")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build kitefix: %v\n%s", err, out)
	}
	return bin
}

// serveProcess is a `kitefix serve` child process.
type serveProcess struct {
	url    string
	cmd    *exec.Cmd
	output *syncbuf.Buffer
	exited chan struct{}
}

// startServeProcess runs bin serve on dataDir with the Buildkite API at
// bkURL and waits for the URL it prints.
func startServeProcess(t *testing.T, bin, dataDir, bkURL string) *serveProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", freeAddr(t), "--data", dataDir)
	cmd.Env = append(os.Environ(), "BUILDKITE_API_URL="+bkURL, "WEBHOOK_BASE_URL=", "LOG_LEVEL=info")
	p, stdout := startProcess(t, cmd, "kitefix serve")
	lines := bufio.NewScanner(stdout)
	var printed []string
	for lines.Scan() {
		printed = append(printed, lines.Text())
		if f := strings.Fields(lines.Text()); p.url == "" && len(f) >= 4 && f[0] == "kitefix" && f[1] == "serving" {
			p.url = f[3]
		}
		if strings.Contains(lines.Text(), "WEBHOOK_BASE_URL set to") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if p.url == "" {
		t.Fatalf("kitefix serve printed %q; stderr:\n%s", printed, p.output)
	}
	if !strings.Contains(strings.Join(printed, "\n"), "only through a tunnel") {
		t.Errorf("kitefix serve does not say its webhook URL needs a tunnel: %q", printed)
	}
	return p
}

// startProcess starts cmd, its standard error kept as the process's
// output, and returns the process and its standard output. When the test
// ends the process is killed, and its output logged under name if the test
// failed.
func startProcess(t *testing.T, cmd *exec.Cmd, name string) (*serveProcess, io.ReadCloser) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, output: &syncbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output)
		}
	})
	return p, stdout
}

// kill ends the process at once, as a crash would.
func (p *serveProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stalledBuildkite accepts every request and answers none until the test
// ends, so the serve's analyze worker holds a received message, unfinished.
func stalledBuildkite(t *testing.T) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "stalled", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}

func postDelivery(t *testing.T, url string, body []byte, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Buildkite-Event", "job.finished")
	req.Header.Set("X-Buildkite-Signature", webhook.Sign(secret, time.Now(), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestServeQueuesOnceAndSurvivesACrash sends one failed-job delivery 50
// times at once to a `kitefix serve` process: exactly one is queued. The
// process is then killed (SIGKILL) after the 202, while its worker holds
// the message: the message is still in the embedded queue, and after a
// restart the same delivery is a duplicate.
func TestServeQueuesOnceAndSurvivesACrash(t *testing.T) {
	ctx := context.Background()
	bin := kitefixBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	const secret = "local-webhook-secret-0123456789abcdef0123456789abcdef"
	store, err := localstore.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	seedWebhookTenant(t, store, store, "kitefix/", "local", sampleHookID, secret)
	// A token, so the worker goes on to ask Buildkite (which stalls).
	if err := store.PutSecret(ctx, connection.TokenSecretName("kitefix/", "local"), sampleToken); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	bk := stalledBuildkite(t)

	p := startServeProcess(t, bin, dataDir, bk)
	hookURL := p.url + "/hooks/" + sampleHookID
	body := sampleFailedJob(t)
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = postDelivery(t, hookURL, body, secret) })
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if diff := cmp.Diff(map[int]int{202: 1, 200: n - 1}, count); diff != "" {
		t.Fatalf("statuses of %d identical deliveries (-want +got):\n%s", n, diff)
	}
	p.kill()
	// The output is complete once the process is gone.
	queued := 0
	for _, l := range deliveryLogs(p.output.String()) {
		if l.Outcome == "queued" {
			queued++
		}
	}
	if queued != 1 {
		t.Errorf("%d deliveries logged as queued, want 1", queued)
	}
	store, err = localstore.Open(dataDir)
	if err != nil {
		t.Fatalf("open the store after the crash: %v", err)
	}
	pending, err := store.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 {
		t.Fatalf("%d messages in the queue after the crash, want 1", len(pending))
	}
	m, err := queue.Decode(pending[0].Body)
	if err != nil || m.JobID != sampleJobID || m.TenantID != "local" {
		t.Errorf("message after the crash = %+v, %v", m, err)
	}
	if has, err := store.HasDelivery(ctx, "local", "job:"+sampleJobID); err != nil || !has {
		t.Errorf("claim after the crash = %t, %v", has, err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	p = startServeProcess(t, bin, dataDir, bk)
	if got := postDelivery(t, p.url+"/hooks/"+sampleHookID, body, secret); got != http.StatusOK {
		t.Errorf("the same delivery after the restart: %d, want 200 (duplicate)", got)
	}
	status, rec := serveStatus(t, p.url)
	if status != http.StatusOK || rec.Webhook == nil || rec.Webhook.LastDeliveryAt == nil {
		t.Errorf("status record = %d %+v, want webhook.last_delivery_at", status, rec.Webhook)
	} else if diff := cmp.Diff(connection.WebhookEvents, rec.Webhook.Events); diff != "" || rec.Webhook.Signature == "" {
		t.Errorf("webhook settings to paste: events (-want +got):\n%s signature %q", diff, rec.Webhook.Signature)
	}
}

func serveStatus(t *testing.T, url string) (int, connection.Record) {
	t.Helper()
	resp, err := http.Get(url + "/v1/integrations/buildkite")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec connection.Record
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, rec
}
