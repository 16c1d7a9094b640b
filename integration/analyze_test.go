package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/secretstore"
	"github.com/kitefix/kitefix/shared/sqsqueue"
	"github.com/kitefix/kitefix/shared/storage"
	"github.com/kitefix/kitefix/shared/webhook"
)

const (
	analyzeToken = "bkua_a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	analyzeOrg   = "acme"
)

const unitTestLog = "~~~ Running tests\n$ go test ./...\n=== RUN   TestWidgetSave\n    widget_test.go:42: save widget: got status 500, want 201\n--- FAIL: TestWidgetSave (0.03s)\nFAIL\n🚨 Error: The command exited with status 1\n"

const agentLostLog = "~~~ Running tests\n$ make test\nrunning...\n# Exited with status -1 (process killed or agent lost; see the timeline tab for more information)\n"

// analyzeEnv is a tenant connected to a fake Buildkite, with the analyze
// queue and its dead-letter queue on kumo.
type analyzeEnv struct {
	k        *kumoEnv
	bk       *analysistest.Server
	tenant   string
	prefix   string
	queueURL string
	dlqURL   string
	store    *dynamostore.Analyses
}

// newAnalyzeEnv connects a tenant (status record and token stored as the
// connect function stores them) and makes the queues: a redrive to the
// dead-letter queue after 5 receives, as in the template, and a visibility
// timeout of 1 second, so only a delay the function sets keeps a returned
// message hidden for long.
func newAnalyzeEnv(t testing.TB, k *kumoEnv) *analyzeEnv {
	t.Helper()
	e := &analyzeEnv{k: k, bk: analysistest.New(t, analyzeToken, analyzeOrg), tenant: uniqueName("tenant"), prefix: uniqueName("kitefix") + "/"}
	e.queueURL, e.dlqURL = makeQueues(t, k)
	e.store = dynamostore.NewAnalyses(k.DynamoDB, k.Table)
	e.connect(t, e.tenant, analyzeToken)
	return e
}

// connect stores a connected status record and token for tenant.
func (e *analyzeEnv) connect(t testing.TB, tenant, token string) {
	t.Helper()
	ctx := context.Background()
	verified := time.Now().UTC()
	rec := connection.Record{
		Tenant: tenant, State: connection.StateConnected,
		Token:                 &connection.TokenInfo{UUID: "b0db3ec4-2ac6-4d3d-8bc4-3c2c1f5e8f10", Scopes: analysistest.Scopes, CreatedAt: verified},
		Organizations:         []connection.Organization{{Slug: analyzeOrg, Name: "Acme"}},
		MissingScopes:         []string{},
		OptionalScopesMissing: []string{},
		Capabilities:          connection.Capabilities{Annotate: true, Retry: true},
		VerifiedAt:            &verified,
		UpdatedAt:             verified,
	}
	if err := dynamostore.New(e.k.DynamoDB, e.k.Table).PutConnection(ctx, rec); err != nil {
		t.Fatalf("store connection: %v", err)
	}
	if err := secretstore.New(e.k.Secrets).PutSecret(ctx, connection.TokenSecretName(e.prefix, tenant), token); err != nil {
		t.Fatalf("store token: %v", err)
	}
}

func (e *analyzeEnv) send(t *testing.T, m queue.Message) {
	t.Helper()
	b, err := queue.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	e.sendRaw(t, b)
}

func (e *analyzeEnv) sendRaw(t *testing.T, b []byte) {
	t.Helper()
	if err := sqsqueue.New(e.k.SQS, e.queueURL).Send(context.Background(), b, "x"); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func (e *analyzeEnv) jobMessage(number int, jobID string) queue.Message {
	return queue.Message{Kind: queue.KindJob, TenantID: e.tenant, Org: analyzeOrg, Pipeline: "web", BuildNumber: number,
		BuildID: fmt.Sprintf("build-web-%d", number), JobID: jobID, Reason: queue.ReasonWebhook, QueuedAt: time.Now().UTC()}
}

// addFailedBuild adds build number of pipeline web, failed in jobs jobs
// named prefix-0, prefix-1, …, each with a unit test failure's log, and
// returns the job ids.
func (e *analyzeEnv) addFailedBuild(number int, prefix string, jobs int) []string {
	var ids []string
	for i := range jobs {
		ids = append(ids, fmt.Sprintf("%s-%d", prefix, i))
	}
	e.bk.AddBuild(analysistest.FailedBuild(analyzeOrg, "web", number, time.Now(), ids...))
	for _, id := range ids {
		e.bk.SetLogText(id, unitTestLog)
	}
	return ids
}

// spendRequests takes n of analyzeToken's requests in the minute window.
func spendRequests(t testing.TB, k *kumoEnv, window time.Time, n int) {
	t.Helper()
	budget := dynamostore.NewBudget(k.DynamoDB, k.Table)
	for range n {
		if ok, err := budget.TakeRequest(context.Background(), analysis.BudgetKey(analyzeToken), window, analysis.RequestsPerMinute); err != nil || !ok {
			t.Fatalf("take: %v %v", ok, err)
		}
	}
}

// receive receives the visible messages (at most 10) as an SQS event.
func (e *analyzeEnv) receive(t *testing.T, url string) events.SQSEvent {
	t.Helper()
	return receiveEvent(t, e.k.SQS, url)
}

// deliver does what Lambda's SQS poller does with one batch: invoke the
// function and delete the messages it did not report as failures. It
// returns the failed message ids.
func (e *analyzeEnv) deliver(t *testing.T, fn *lambdaFunction, ev events.SQSEvent) []string {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := decodeStrict(invokePayload(t, fn, payload), &resp); err != nil {
		t.Fatalf("result is not a batch response: %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	for _, m := range ev.Records {
		if slices.Contains(failed, m.MessageId) {
			continue
		}
		if _, err := e.k.SQS.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.queueURL), ReceiptHandle: aws.String(m.ReceiptHandle)}); err != nil {
			t.Fatalf("delete message: %v", err)
		}
	}
	return failed
}

// drain delivers batches until the queue has no visible message.
func (e *analyzeEnv) drain(t *testing.T, fn *lambdaFunction) {
	t.Helper()
	for range 20 {
		ev := e.receive(t, e.queueURL)
		if len(ev.Records) == 0 {
			return
		}
		if failed := e.deliver(t, fn, ev); len(failed) > 0 {
			t.Fatalf("messages returned to the queue: %v", failed)
		}
	}
	t.Fatalf("the queue did not drain")
}

// invokePayload invokes fn with payload (one invocation at a time).
func invokePayload(t *testing.T, fn *lambdaFunction, payload []byte) []byte {
	t.Helper()
	fn.mu.Lock()
	defer fn.mu.Unlock()
	resp, err := fn.client.Post(fn.url, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke %s: %v", fn.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke %s: %s %s %v", fn.name, resp.Status, b, err)
	}
	var ie invocationError
	if json.Unmarshal(b, &ie) == nil && ie.ErrorType != "" {
		t.Fatalf("invoke %s: function error %s: %s", fn.name, ie.ErrorType, ie.ErrorMessage)
	}
	return b
}

func (e *analyzeEnv) analysis(t *testing.T, jobID string) analysis.Record {
	t.Helper()
	rec, err := e.store.GetAnalysis(context.Background(), e.tenant, "job:"+jobID)
	if err != nil {
		t.Fatalf("analysis of %s: %v", jobID, err)
	}
	return rec
}

// TestAnalyzeFunctionEndToEnd runs the analyze bootstrap under the Lambda
// Runtime Interface Emulator against kumo and a fake Buildkite: queued
// failed jobs end as stored analyses, one annotation and, for the lost
// agent, one retry; a repeated delivery changes nothing; a job whose
// webhook never came is found by the scheduled reconcile pass and analyzed
// once.
func TestAnalyzeFunctionEndToEnd(t *testing.T) {
	k := startKumo(t)
	e := newAnalyzeEnv(t, k)
	e.bk.AddBuild(analysistest.FailedBuild(analyzeOrg, "web", 21, time.Now(), "job-lost", "job-unit"))
	e.bk.SetLogText("job-lost", agentLostLog)
	e.bk.SetLogText("job-unit", unitTestLog)
	fn := startFunction(t, "analyze", functionEnv(t, "analyze", k, e.queueURL, e.prefix, e.bk.URL))

	e.send(t, e.jobMessage(21, "job-lost"))
	e.send(t, e.jobMessage(21, "job-unit"))
	e.drain(t, fn)

	lost, unit := e.analysis(t, "job-lost"), e.analysis(t, "job-unit")
	got := []string{string(lost.State), string(lost.Category), string(unit.State), string(unit.Category)}
	if diff := cmp.Diff([]string{"analyzed", "infrastructure", "analyzed", "test"}, got); diff != "" {
		t.Errorf("analyses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"job-lost"}, e.bk.Retries()); diff != "" {
		t.Errorf("retries (-want +got):\n%s", diff)
	}
	if lost.Actions.Retried == nil || unit.Actions.RetrySkipped == "" || lost.Actions.Annotated == nil || unit.Actions.Annotated == nil {
		t.Errorf("actions: lost %+v, unit %+v", lost.Actions, unit.Actions)
	}
	anns := e.bk.Annotations()
	if len(anns) == 0 {
		t.Fatalf("no annotation")
	}
	last := anns[len(anns)-1]
	if last.Context != "kitefix" || last.Style != "error" || !strings.Contains(last.Body, "TestWidgetSave") || !strings.Contains(last.Body, "agent lost") {
		t.Errorf("last annotation (%s, %s) does not show both jobs:\n%s", last.Context, last.Style, last.Body)
	}
	t.Logf("Buildkite requests per analyzed job: lost agent %d (with the retry), test failure %d", lost.Requests, unit.Requests)

	// The same message again: done, nothing new.
	calls := len(e.bk.Calls())
	e.send(t, e.jobMessage(21, "job-lost"))
	e.drain(t, fn)
	if n := len(e.bk.Retries()); n != 1 {
		t.Errorf("%d retries after a repeated delivery; want 1", n)
	}
	if n := len(e.bk.Calls()) - calls; n != 0 {
		t.Errorf("a repeated delivery made %d Buildkite requests; want none", n)
	}

	// A failed build whose webhook never arrived: the schedule finds it.
	e.bk.AddBuild(analysistest.FailedBuild(analyzeOrg, "web", 22, time.Now(), "job-missed"))
	e.bk.SetLogText("job-missed", unitTestLog)
	fn.invoke(t, "analyze-schedule.json")
	e.drain(t, fn)
	if rec := e.analysis(t, "job-missed"); rec.State != analysis.StateAnalyzed {
		t.Errorf("missed job: state %s", rec.State)
	}
	fn.invoke(t, "analyze-schedule.json")
	if ev := e.receive(t, e.queueURL); len(ev.Records) != 0 {
		t.Errorf("a second reconcile pass queued %d messages; want none", len(ev.Records))
	}
	page, _, err := e.store.ListAnalyses(context.Background(), e.tenant, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 {
		t.Errorf("%d analyses stored; want 3, one per job", len(page))
	}
	if strings.Contains(fn.output.String(), analyzeToken) {
		t.Errorf("the function's output holds the token")
	}
}

// TestAnalyzeFunctionFailures shows what becomes of messages that cannot
// be done now or ever: a rate-limited one waits for RateLimit-Reset as a
// new, delayed message whose receives start afresh, a revoked token fails the connection and the job, and a poison message
// goes to the dead-letter queue after the queue's maxReceiveCount with one
// log line.
func TestAnalyzeFunctionFailures(t *testing.T) {
	k := startKumo(t)
	e := newAnalyzeEnv(t, k)
	e.bk.AddBuild(analysistest.FailedBuild(analyzeOrg, "web", 31, time.Now(), "job-31"))
	e.bk.SetLogText("job-31", unitTestLog)
	fn := startFunction(t, "analyze", functionEnv(t, "analyze", k, e.queueURL, e.prefix, e.bk.URL))

	// 429 with RateLimit-Reset: 7 (longer than the function sits out): the
	// message only waits for Buildkite's window, so it is sent again as a
	// new message delayed 7 s that carries one deferral, and the received
	// one is deleted: the wait does not count towards the redrive (the
	// queue's own visibility timeout is 1 s).
	e.bk.Fail("/builds/31", analysistest.Fault{Status: 429, Header: map[string]string{"RateLimit-Reset": "7"}})
	e.send(t, e.jobMessage(31, "job-31"))
	ev := e.receive(t, e.queueURL)
	if failed := e.deliver(t, fn, ev); len(failed) != 0 {
		t.Fatalf("rate limited: failures %v, want none (the message is sent again)", failed)
	}
	if visible, delayed, inFlight := queueCounts(t, e.k.SQS, e.queueURL); visible != 0 || delayed != 1 || inFlight != 0 {
		t.Fatalf("after the 429: %d visible, %d delayed, %d in flight messages; want one delayed", visible, delayed, inFlight)
	}
	time.Sleep(1500 * time.Millisecond)
	if ev := e.receive(t, e.queueURL); len(ev.Records) != 0 {
		t.Fatalf("a rate-limited message was visible again after 1.5 s")
	}
	again := receiveWithin(t, 10*time.Second, func() events.SQSEvent { return e.receive(t, e.queueURL) })
	if len(again.Records) != 1 {
		t.Fatalf("the rate-limited message did not come back: %d messages", len(again.Records))
	}
	if m := again.Records[0]; m.Body != ev.Records[0].Body || deferralsOf(m) != 1 || m.Attributes["ApproximateReceiveCount"] != "1" {
		t.Errorf("sent again: deferrals %d, receive count %s, same body %v; want 1, 1, true",
			deferralsOf(m), m.Attributes["ApproximateReceiveCount"], m.Body == ev.Records[0].Body)
	}
	if failed := e.deliver(t, fn, again); len(failed) != 0 {
		t.Fatalf("after the wait: failures %v", failed)
	}
	if rec := e.analysis(t, "job-31"); rec.State != analysis.StateAnalyzed {
		t.Errorf("after the wait: analysis %s; want analyzed", rec.State)
	}

	// A revoked token: the connection fails, the job is recorded failed,
	// the message is done.
	revoked := uniqueName("tenant")
	e.connect(t, revoked, "bkua_0000000000000000000000000000000000000000")
	m := e.jobMessage(31, "job-31")
	m.TenantID = revoked
	e.send(t, m)
	e.drain(t, fn)
	rec, err := e.store.GetAnalysis(context.Background(), revoked, "job:job-31")
	if err != nil || rec.State != analysis.StateFailed || !strings.Contains(rec.Error, "401") {
		t.Errorf("revoked token: analysis %s %q (%v); want failed with the 401", rec.State, rec.Error, err)
	}
	conn, err := dynamostore.New(k.DynamoDB, k.Table).GetConnection(context.Background(), revoked)
	if err != nil || conn.State != connection.StateFailed {
		t.Errorf("revoked token: connection %s (%v); want failed", conn.State, err)
	}

	// Poison: not JSON. Returned every time until SQS moves it.
	e.sendRaw(t, []byte(`{"kind":"job","tenant_id":`))
	for i := 0; i < 8; i++ {
		ev := e.receive(t, e.queueURL)
		if len(ev.Records) == 0 {
			break
		}
		if failed := e.deliver(t, fn, ev); len(failed) != len(ev.Records) {
			t.Fatalf("poison message: failures %v; want every message", failed)
		}
	}
	dead := e.receive(t, e.dlqURL)
	if len(dead.Records) != 1 || !strings.HasPrefix(dead.Records[0].Body, `{"kind":"job","tenant_id":`) {
		t.Errorf("dead-letter queue holds %d messages; want the poison one", len(dead.Records))
	}
	if n := strings.Count(fn.output.String(), "poison message"); n != 1 {
		t.Errorf("%d log lines about the poison message; want 1", n)
	}
}

// TestBudgetSharedByTwoWorkers runs two workers, each with its own
// DynamoDB client (two function instances), over one token's budget on
// kumo: together they send at most the 50 requests of the minute, and
// the jobs that found the budget spent go back to the queue with a delay
// that ends by the next minute.
func TestBudgetSharedByTwoWorkers(t *testing.T) {
	k := startKumo(t)
	e := newAnalyzeEnv(t, k)
	if s := time.Now().Second(); s > 40 {
		time.Sleep(time.Duration(61-s) * time.Second) // stay inside one minute
	}
	window := time.Now().Truncate(time.Minute)
	const spent = analysis.RequestsPerMinute - 6
	spendRequests(t, k, window, spent)
	const jobs = 8
	ids := e.addFailedBuild(41, "b", jobs)
	workers := make([]*analysis.Worker, 2)
	for i := range workers {
		ddb := newKumoDynamoDB(k.Config, k.URL)
		workers[i] = analysis.New(analysis.Config{
			Connections: kumoConnections{k: k, prefix: e.prefix},
			Store:       dynamostore.NewAnalyses(ddb, k.Table),
			Budget:      dynamostore.NewBudget(ddb, k.Table),
			Buildkite: func(token string, lim buildkite.Limiter) analysis.Buildkite {
				return buildkite.New(token, buildkite.WithBaseURL(e.bk.URL), buildkite.WithLimiter(lim), buildkite.WithMaxRetries(0))
			},
			NoBaseline: true,
		})
	}
	var later atomic.Int32
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			out := workers[i%2].Process(ctx, e.jobMessage(41, id), 1)
			if out.Verdict == analysis.Later {
				later.Add(1)
				if out.Delay > time.Minute {
					t.Errorf("job %s: delay %s, want by the next minute", id, out.Delay)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(e.bk.Calls()); n > analysis.RequestsPerMinute-spent {
		t.Errorf("%d Buildkite requests with %d left in the minute", n, analysis.RequestsPerMinute-spent)
	}
	if later.Load() == 0 {
		t.Errorf("every job was done with a spent budget")
	}
	t.Logf("%d requests sent, %d of %d jobs sent back to the queue", len(e.bk.Calls()), later.Load(), jobs)
}

// kumoConnections reads a tenant's connection and token from kumo.
type kumoConnections struct {
	k      *kumoEnv
	prefix string
}

func (c kumoConnections) GetConnection(ctx context.Context, tenant string) (connection.Record, error) {
	return dynamostore.New(c.k.DynamoDB, c.k.Table).GetConnection(ctx, tenant)
}

func (c kumoConnections) Token(ctx context.Context, tenant string) (string, error) {
	return secretstore.New(c.k.Secrets).GetSecret(ctx, connection.TokenSecretName(c.prefix, tenant))
}

func (c kumoConnections) Verify(context.Context, string) (connection.Record, error) {
	return connection.Record{}, storage.ErrUnavailable
}

func (c kumoConnections) Tenants(context.Context) ([]string, error) { return nil, nil }

// TestBudgetCounterOnKumo takes from one minute's budget from many
// goroutines over two clients: exactly the limit is granted.
func TestBudgetCounterOnKumo(t *testing.T) {
	k := startKumo(t)
	clients := []*dynamodb.Client{k.DynamoDB, newKumoDynamoDB(k.Config, k.URL)}
	window := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	key := analysis.BudgetKey(uniqueName("token"))
	var granted atomic.Int32
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := dynamostore.NewBudget(clients[g%2], k.Table)
			for range 8 {
				ok, err := b.TakeRequest(context.Background(), key, window, analysis.RequestsPerMinute)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					granted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := int(granted.Load()); n != analysis.RequestsPerMinute {
		t.Errorf("%d requests granted in one minute; want %d", n, analysis.RequestsPerMinute)
	}
	out, err := k.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(k.Table),
		Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "BUDGET#" + key},
			"sk": &ddbtypes.AttributeValueMemberS{Value: "MINUTE#" + strconv.FormatInt(window.Unix()/60, 10)},
		},
	})
	if err != nil || len(out.Item) == 0 {
		t.Fatalf("budget item: %v", err)
	}
	if strings.Contains(fmt.Sprint(out.Item), "bkua_") {
		t.Errorf("the budget item holds a token")
	}
}

// TestWebhookToAnnotationUnderRIE follows one failed job through both
// functions under the emulator: a signed job.finished delivery to the
// webhook function is queued on SQS (kumo), the analyze function takes
// the batch, stores the analysis, annotates the build and retries the
// lost agent's job once.
func TestWebhookToAnnotationUnderRIE(t *testing.T) {
	ctx := context.Background()
	k := startKumo(t)
	e := newAnalyzeEnv(t, k)
	tenant := uniqueName("tenant")
	svc := connection.NewService(connection.Config{
		Records: dynamostore.New(k.DynamoDB, k.Table),
		Secrets: secretstore.New(k.Secrets),
		Buildkite: func(token string) connection.Buildkite {
			return buildkite.New(token, buildkite.WithBaseURL(e.bk.URL), buildkite.WithLimiter(nil))
		},
		SecretPrefix:   e.prefix,
		WebhookBaseURL: webhookBaseURL,
	})
	rec, err := svc.Connect(ctx, tenant, analyzeToken)
	if err != nil || rec.Webhook == nil || rec.Webhook.Secret == "" {
		t.Fatalf("connect: %v (%+v)", err, rec.Webhook)
	}
	path := strings.TrimPrefix(rec.Webhook.URL, webhookBaseURL)

	b := analysistest.FailedBuild(analyzeOrg, "web", 51, time.Now(), "hooked")
	e.bk.AddBuild(b)
	e.bk.SetLogText("hooked", agentLostLog)
	body := analysistest.JobFinished(analyzeOrg, b, "hooked")
	req := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: path,
		Headers: map[string]string{
			"content-type":          "application/json",
			"x-buildkite-event":     "job.finished",
			"x-buildkite-signature": webhook.Sign(rec.Webhook.Secret, time.Now(), body),
		},
		Body: string(body),
		RequestContext: events.LambdaFunctionURLRequestContext{
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: path},
		},
	}
	payload, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hookFn := startFunction(t, "webhook", functionEnv(t, "webhook", k, e.queueURL, e.prefix, e.bk.URL))
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(invokePayload(t, hookFn, payload), &resp); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d %s (%v); want 202", resp.StatusCode, resp.Body, err)
	}

	e.tenant = tenant
	analyzeFn := startFunction(t, "analyze", functionEnv(t, "analyze", k, e.queueURL, e.prefix, e.bk.URL))
	e.drain(t, analyzeFn)
	got := e.analysis(t, "hooked")
	if got.State != analysis.StateAnalyzed || got.Category != "infrastructure" || got.Actions.Retried == nil {
		t.Errorf("analysis: %s %s, retried %+v", got.State, got.Category, got.Actions.Retried)
	}
	if diff := cmp.Diff([]string{"hooked"}, e.bk.Retries()); diff != "" {
		t.Errorf("retries (-want +got):\n%s", diff)
	}
	if anns := e.bk.Annotations(); len(anns) != 1 || anns[0].Context != "kitefix" {
		t.Errorf("annotations: %+v", anns)
	}
}

// TestConnectFunctionListsAnalyses invokes the connect function under the
// emulator with the sample GET /v1/analyses event: the tenant's analyses,
// newest first, without the tenant id.
func TestConnectFunctionListsAnalyses(t *testing.T) {
	ctx := context.Background()
	k := startKumo(t)
	store := dynamostore.NewAnalyses(k.DynamoDB, k.Table)
	base := time.Now().Add(-time.Hour)
	for i := range 3 {
		if err := store.CreateAnalysis(ctx, analysistest.Record(sampleTenant, fmt.Sprintf("j%d", i), base.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.CreateAnalysis(ctx, analysistest.Record(uniqueName("other"), "x", base)); err != nil {
		t.Fatal(err)
	}
	fn := startFunction(t, "connect", functionEnv(t, "connect", k, "", uniqueName("kitefix")+"/", "http://127.0.0.1:1"))
	var resp events.APIGatewayV2HTTPResponse
	if err := decodeStrict(fn.invoke(t, "connect-analyses.json"), &resp); err != nil {
		t.Fatalf("result is not an HTTP API response: %v", err)
	}
	var page struct {
		Analyses []map[string]any `json:"analyses"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/analyses = %d %s (%v)", resp.StatusCode, resp.Body, err)
	}
	var ids []string
	for _, a := range page.Analyses {
		ids = append(ids, a["job_id"].(string))
	}
	if diff := cmp.Diff([]string{"j2", "j1", "j0"}, ids); diff != "" {
		t.Errorf("analyses (-want +got):\n%s", diff)
	}
	if strings.Contains(resp.Body, "tenant_id") || strings.Contains(resp.Body, sampleTenant) {
		t.Errorf("the response shows the tenant: %s", resp.Body)
	}
}

// TestBudgetSharedByTwoFunctionInstances runs two analyze functions under
// the emulator at once, each with its own batch of one token's jobs, with
// six requests left in the token's minute: together they send at most
// six, and send the rest of their batches again as messages delayed to
// the next minute.
func TestBudgetSharedByTwoFunctionInstances(t *testing.T) {
	k := startKumo(t)
	e := newAnalyzeEnv(t, k)
	const jobs = 8
	ids := e.addFailedBuild(61, "two", jobs)
	var fns []*lambdaFunction
	for range 2 {
		env := functionEnv(t, "analyze", k, e.queueURL, e.prefix, e.bk.URL)
		// 15 s leaves 5 s of work after the function's margin: a wait for
		// the next minute never fits, so a spent budget sends the message
		// back at once.
		env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = "15"
		fns = append(fns, startFunction(t, "analyze", env))
	}
	if s := time.Now().Second(); s > 50 {
		time.Sleep(time.Duration(61-s) * time.Second) // the whole run inside one minute
	}
	window := time.Now().Truncate(time.Minute)
	const left = 6
	spendRequests(t, k, window, analysis.RequestsPerMinute-left)
	for _, id := range ids {
		e.send(t, e.jobMessage(61, id))
	}
	batches := []events.SQSEvent{}
	for len(batches) < 2 {
		ev := e.receive(t, e.queueURL)
		if len(ev.Records) == 0 {
			t.Fatalf("received %d batches", len(batches))
		}
		if len(batches) == 0 && len(ev.Records) > jobs/2 {
			// Give each function half.
			batches = append(batches, events.SQSEvent{Records: ev.Records[:jobs/2]}, events.SQSEvent{Records: ev.Records[jobs/2:]})
			break
		}
		batches = append(batches, ev)
	}
	var wg sync.WaitGroup
	failed := make([][]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed[i] = e.deliver(t, fns[i], batches[i])
		}()
	}
	wg.Wait()
	if time.Now().Truncate(time.Minute) != window {
		t.Skip("the run crossed a minute boundary: the budget renewed midway")
	}
	if n := len(e.bk.Calls()); n > left {
		t.Errorf("the two functions sent %d requests with %d left in the minute", n, left)
	}
	// The jobs the budget did not cover wait for the next minute as new,
	// delayed messages: none is a batch item failure (counted towards the
	// redrive), and none is lost.
	if len(failed[0])+len(failed[1]) != 0 {
		t.Errorf("messages returned as failures %v %v; want them sent again", failed[0], failed[1])
	}
	analyzed := 0
	for _, id := range ids {
		if _, err := e.store.GetAnalysis(context.Background(), e.tenant, "job:"+id); err == nil {
			analyzed++
		}
	}
	// A job analyzed before the budget ran out may still wait to be
	// reported (its annotation), so its message is delayed too: every job
	// is analyzed or delayed, at most one message a job, some delayed.
	visible, delayed, inFlight := queueCounts(t, k.SQS, e.queueURL)
	if analyzed+delayed < jobs || delayed > jobs || delayed == 0 || visible+inFlight != 0 {
		t.Errorf("%d jobs analyzed, %d messages delayed, %d visible, %d in flight; want every job analyzed or delayed, some delayed",
			analyzed, delayed, visible, inFlight)
	}
	t.Logf("%d requests sent; %d jobs analyzed, %d messages sent again", len(e.bk.Calls()), analyzed, delayed)
}
