package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/dynamostore"
)

// awsFaultProxy stands between the functions and kumo and answers the
// calls that match its rule with an AWS error, as DynamoDB, SQS or Secrets
// Manager would when throttling or failing.
type awsFaultProxy struct {
	*httptest.Server
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	rule  *awsFault
	hits  int
}

// awsFault is an error answer for the calls to service whose X-Amz-Target
// ends with op (any, when empty) and whose body contains match.
type awsFault struct {
	service, op, match string
	status             int
	errorType          string
}

func newAWSFaultProxy(t *testing.T, kumoURL string) *awsFaultProxy {
	u, err := url.Parse(kumoURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &awsFaultProxy{proxy: httputil.NewSingleHostReverseProxy(u)}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

// fail sets the rule (nil clears it) and returns how often the previous
// one matched.
func (p *awsFaultProxy) fail(f *awsFault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	hits := p.hits
	p.rule, p.hits = f, 0
	return hits
}

func (p *awsFaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	target := r.Header.Get("X-Amz-Target")
	p.mu.Lock()
	f := p.rule
	hit := f != nil && strings.HasPrefix(target, f.service+".") && (f.op == "" || strings.HasSuffix(target, "."+f.op)) &&
		bytes.Contains(body, []byte(f.match))
	if hit {
		p.hits++
	}
	p.mu.Unlock()
	if !hit {
		p.proxy.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-ErrorType", f.errorType)
	w.WriteHeader(f.status)
	fmt.Fprintf(w, `{"__type":%q,"message":"injected by the test"}`, f.errorType)
}

// Errors the stand-in answers with.
var (
	ddbThrottled = awsFault{service: "DynamoDB_20120810", status: 400, errorType: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}
	sqsFailing   = awsFault{service: "AmazonSQS", status: 500, errorType: "com.amazonaws.sqs#InternalError"}
	smFailing    = awsFault{service: "secretsmanager", status: 500, errorType: "InternalServiceError"}
)

func withOp(f awsFault, op, match string) *awsFault { f.op, f.match = op, match; return &f }

// faultTenant is one connected tenant of the fault test.
type faultTenant struct {
	name, token, org string
	bk               *analysistest.Server
	hook, secret     string
}

// faultRun holds what the fault test's rows share.
type faultRun struct {
	s      *awsStack
	k      *kumoEnv
	faults *awsFaultProxy
	router *buildkiteRouter
	store  *dynamostore.Analyses
	conns  *dynamostore.Store
}

// job makes build n of the tenant with one failed job (and its log when
// log is set) and returns the job.finished body.
func (f *faultTenant) job(n int, id string, log bool) []byte {
	b := analysistest.FailedBuild(f.org, "web", n, time.Now(), id)
	f.bk.AddBuild(b)
	if log {
		f.bk.SetLogText(id, unitTestLog)
	}
	return analysistest.JobFinished(f.org, b, id)
}

func (r *faultRun) deliver(t *testing.T, f *faultTenant, body []byte, want int) {
	t.Helper()
	if status, resp := r.s.deliver(t, f.hook, f.secret, "job.finished", body); status != want {
		t.Errorf("delivery: %d %s; want %d", status, resp, want)
	}
}

func (r *faultRun) wantState(t *testing.T, f *faultTenant, id string, state analysis.State, errPart string) {
	t.Helper()
	rec, err := r.store.GetAnalysis(context.Background(), f.name, "job:"+id)
	if err != nil {
		t.Errorf("analysis of %s: %v", id, err)
		return
	}
	if rec.State != state || !strings.Contains(rec.Error, errPart) {
		t.Errorf("analysis of %s: %s %q; want %s with %q", id, rec.State, rec.Error, state, errPart)
	}
}

// again makes returned messages visible at once, as their delay passing
// would.
func (r *faultRun) again(t *testing.T, receipts []string) {
	t.Helper()
	for _, h := range receipts {
		if _, err := r.k.SQS.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(r.s.queueURL), ReceiptHandle: aws.String(h), VisibilityTimeout: 0,
		}); err != nil {
			t.Fatalf("make visible: %v", err)
		}
	}
}

// drainAll drains until the queue is empty, making returned messages
// visible each time; it returns how many passes it took.
func (r *faultRun) drainAll(t *testing.T) int {
	t.Helper()
	for pass := 1; pass <= 6; pass++ {
		back, receipts := r.s.drainWith(context.Background(), t)
		if len(back) == 0 {
			return pass
		}
		r.again(t, receipts)
	}
	t.Fatalf("the queue still holds messages after 6 passes")
	return 0
}

// connect connects a tenant through the settings API.
func (r *faultRun) connect(t *testing.T, name, token, org string) *faultTenant {
	t.Helper()
	f := &faultTenant{name: name, token: token, org: org, bk: r.router.add(t, token, org)}
	resp := r.s.call(t, name, "PUT", "/v1/integrations/buildkite", `{"token":"`+token+`"}`, nil)
	if resp.status != 200 {
		t.Fatalf("connect %s: %d %s", name, resp.status, resp.body)
	}
	f.hook, f.secret = resp.webhookOf(t)
	return f
}

// TestFaultsEndInAClearState injects one fault at a time into Buildkite
// (through the router in front of the fakes) and into DynamoDB, SQS and
// Secrets Manager (through a proxy in front of kumo), and checks that each
// failed job ends retried (back on the queue, then analyzed), reported (a
// failed analysis that says why) or refused (the webhook answers an error
// so the delivery is sent again) — never lost, and never with a
// connection left broken. Each subtest is one row of the README's table.
// Rows use their own tenants, so one token's request budget (50 a minute)
// is not what they measure.
//
// The SDK's own retries are off (AWS_MAX_ATTEMPTS=1) so each injected
// error reaches kitefix at once: what is tested is what kitefix does with
// the error the SDK gives up with.
func TestFaultsEndInAClearState(t *testing.T) {
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	k := startKumo(t)
	r := &faultRun{k: k, faults: newAWSFaultProxy(t, k.URL), router: newBuildkiteRouter(t)}
	r.s = newAWSStackVia(t, r.router, k, r.faults.URL)
	r.store, r.conns = dynamostore.NewAnalyses(k.DynamoDB, k.Table), dynamostore.New(k.DynamoDB, k.Table)
	s, faults, ctx := r.s, r.faults, context.Background()

	t.Run("secrets manager fails during connect", func(t *testing.T) {
		r.router.add(t, tokenA, orgA)
		faults.fail(withOp(smFailing, "", ""))
		resp := s.call(t, tenantA, "PUT", "/v1/integrations/buildkite", `{"token":"`+tokenA+`"}`, nil)
		if hits := faults.fail(nil); hits == 0 {
			t.Error("the fault never matched")
		}
		if resp.status != http.StatusServiceUnavailable {
			t.Errorf("connect while Secrets Manager fails: %d %s; want 503", resp.status, resp.body)
		}
		if st := s.call(t, tenantA, "GET", "/v1/integrations/buildkite", "", nil); st.json["state"] == "connected" {
			t.Errorf("a failed connect left the tenant connected: %s", st.body)
		}
	})
	a := r.connect(t, tenantA, tokenA, orgA)
	t.Run("buildkite 403 on the build", func(t *testing.T) {
		a.bk.Fail("/builds/11", analysistest.Fault{Status: 403})
		r.deliver(t, a, a.job(11, "f403", true), 202)
		if passes := r.drainAll(t); passes != 1 {
			t.Errorf("%d passes; want 1 (a 403 is not retried)", passes)
		}
		r.wantState(t, a, "f403", analysis.StateFailed, "403")
	})
	t.Run("buildkite 404 log gone", func(t *testing.T) {
		r.deliver(t, a, a.job(12, "f404", false), 202)
		r.drainAll(t)
		r.wantState(t, a, "f404", analysis.StateFailed, "404")
	})
	t.Run("buildkite 429 with RateLimit-Reset", func(t *testing.T) {
		// Longer than the function sits out: the message is sent again,
		// delayed until the reset, and the received one deleted, so the
		// wait does not count towards the redrive.
		a.bk.Fail("/jobs/f429/log", analysistest.Fault{Status: 429, Header: map[string]string{"RateLimit-Reset": "7"}})
		r.deliver(t, a, a.job(13, "f429", true), 202)
		if back, _ := s.drainWith(ctx, t); len(back) != 0 {
			t.Fatalf("rate limited: %d messages back as failures; want the message sent again", len(back))
		}
		if visible, delayed, inFlight := queueCounts(t, r.k.SQS, s.queueURL); visible+inFlight != 0 || delayed != 1 {
			t.Fatalf("rate limited: %d visible, %d delayed, %d in flight messages; want one delayed", visible, delayed, inFlight)
		}
		time.Sleep(1100 * time.Millisecond) // past the queue's own visibility timeout
		if ev := s.receive(t, s.queueURL); len(ev.Records) != 0 {
			t.Errorf("the rate-limited message is visible before RateLimit-Reset")
		}
		waitVisible(t, r.k.SQS, s.queueURL, 10*time.Second)
		r.drainAll(t)
		r.wantState(t, a, "f429", analysis.StateAnalyzed, "")
	})
	t.Run("buildkite 500 once", func(t *testing.T) {
		a.bk.Fail("/builds/14", analysistest.Fault{Status: 500})
		r.deliver(t, a, a.job(14, "f500", true), 202)
		if passes := r.drainAll(t); passes != 1 {
			t.Errorf("%d passes; want 1 (the client retries a 5xx)", passes)
		}
		r.wantState(t, a, "f500", analysis.StateAnalyzed, "")
	})
	t.Run("buildkite 502 outlasting the client's retries", func(t *testing.T) {
		a.bk.Fail("/jobs/f502/log", analysistest.Fault{Status: 502, Times: 4})
		r.deliver(t, a, a.job(15, "f502", true), 202)
		if passes := r.drainAll(t); passes < 2 {
			t.Errorf("%d passes; want the message back at least once", passes)
		}
		r.wantState(t, a, "f502", analysis.StateAnalyzed, "")
	})
	t.Run("buildkite hangs", func(t *testing.T) {
		r.router.setIntercept(func(w http.ResponseWriter, req *http.Request) bool {
			if !strings.Contains(req.URL.Path, "/jobs/hang/log") {
				return false
			}
			<-req.Context().Done()
			return true
		})
		r.deliver(t, a, a.job(16, "hang", true), 202)
		// The invocation's deadline (the function's timeout) ends it.
		dl, cancel := context.WithTimeout(ctx, 2*time.Second)
		back, receipts := s.drainWith(dl, t)
		cancel()
		r.router.setIntercept(nil)
		if len(back) != 1 {
			t.Fatalf("hung log: %d messages back; want 1", len(back))
		}
		r.again(t, receipts)
		r.drainAll(t)
		r.wantState(t, a, "hang", analysis.StateAnalyzed, "")
	})
	t.Run("connection dropped mid-log", func(t *testing.T) {
		b := a.job(17, "drop", false)
		a.bk.SetLog("drop", func() io.Reader {
			return io.MultiReader(strings.NewReader(strings.Repeat("~~~ Running tests\nok\n", 200)), errReader{})
		})
		r.deliver(t, a, b, 202)
		if passes := r.drainAll(t); passes != 3 {
			t.Errorf("%d passes; want 3 (two tries, then a clear failure)", passes)
		}
		r.wantState(t, a, "drop", analysis.StateFailed, "cut off")
	})
	t.Run("truncated build body", func(t *testing.T) {
		var mu sync.Mutex
		cut := 2
		r.router.setIntercept(func(w http.ResponseWriter, req *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			if !strings.HasSuffix(req.URL.Path, "/builds/18") || cut == 0 {
				return false
			}
			cut--
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "5000")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"id":"build-web-18","number":18,"jobs":[{"id":"tr`)
			panic(http.ErrAbortHandler)
		})
		r.deliver(t, a, a.job(18, "trunc", true), 202)
		r.drainAll(t)
		r.router.setIntercept(nil)
		if cut != 0 {
			t.Errorf("the truncated answer was sent %d times; want 2", 2-cut)
		}
		r.wantState(t, a, "trunc", analysis.StateAnalyzed, "")
	})
	t.Run("buildkite 401 token revoked mid-burst", func(t *testing.T) {
		b := r.connect(t, tenantB, tokenB, orgB)
		build := analysistest.FailedBuild(orgB, "web", 20, time.Now(), "r-1", "r-2", "r-3")
		b.bk.AddBuild(build)
		for _, id := range []string{"r-1", "r-2", "r-3"} {
			b.bk.SetLogText(id, unitTestLog)
		}
		b.bk.Fail("/jobs/r-1/log", analysistest.Fault{Status: 401})
		b.bk.Fail("/v2/access-token", analysistest.Fault{Status: 401})
		for _, id := range []string{"r-1", "r-2", "r-3"} {
			r.deliver(t, b, analysistest.JobFinished(orgB, build, id), 202)
		}
		r.drainAll(t)
		r.wantState(t, b, "r-1", analysis.StateFailed, "401")
		for _, id := range []string{"r-2", "r-3"} {
			rec, err := r.store.GetAnalysis(ctx, tenantB, "job:"+id)
			if err != nil || rec.State != analysis.StateAnalyzed && rec.State != analysis.StateFailed {
				t.Errorf("analysis of %s: %s (%v); want analyzed or failed", id, rec.State, err)
			}
		}
		conn, err := r.conns.GetConnection(ctx, tenantB)
		if err != nil || conn.State != connection.StateFailed || conn.Error == nil || conn.Error.Code != connection.CodeInvalidToken {
			t.Errorf("B's connection after the revocation: %+v (%v); want failed with invalid_token", conn, err)
		}
		// Not broken for good: connecting a working token mends it.
		if resp := s.call(t, tenantB, "PUT", "/v1/integrations/buildkite", `{"token":"`+tokenB+`"}`, nil); resp.status != 200 || resp.json["state"] != "connected" {
			t.Errorf("reconnect after revocation: %d %s", resp.status, resp.body)
		}
	})

	c := r.connect(t, "tenant-charlie", "bkua_cccc5555cccc5555cccc5555cccc5555cccc5555", "initech")
	t.Run("secrets manager fails for the webhook", func(t *testing.T) {
		// C's first delivery: its keys are not cached yet.
		body := c.job(26, "sm-hook", true)
		faults.fail(withOp(smFailing, "GetSecretValue", ""))
		status, resp := s.deliver(t, c.hook, c.secret, "job.finished", body)
		if hits := faults.fail(nil); hits == 0 {
			t.Error("the fault never matched")
		}
		if status != http.StatusServiceUnavailable {
			t.Errorf("webhook while Secrets Manager fails: %d %s; want 503 (not 401: Buildkite must send it again)", status, resp)
		}
		r.deliver(t, c, body, http.StatusAccepted)
		r.drainAll(t)
		r.wantState(t, c, "sm-hook", analysis.StateAnalyzed, "")
	})
	t.Run("dynamodb throttles the webhook's claim", func(t *testing.T) {
		body := c.job(21, "ddb-claim", true)
		faults.fail(withOp(ddbThrottled, "PutItem", "ddb-claim"))
		r.deliver(t, c, body, http.StatusServiceUnavailable)
		if hits := faults.fail(nil); hits == 0 {
			t.Error("the fault never matched")
		}
		r.deliver(t, c, body, http.StatusAccepted) // Buildkite's next attempt
		r.drainAll(t)
		r.wantState(t, c, "ddb-claim", analysis.StateAnalyzed, "")
	})
	t.Run("sqs refuses the send", func(t *testing.T) {
		body := c.job(22, "sqs-send", true)
		faults.fail(withOp(sqsFailing, "SendMessage", ""))
		r.deliver(t, c, body, http.StatusServiceUnavailable)
		if hits := faults.fail(nil); hits == 0 {
			t.Error("the fault never matched")
		}
		// The claim was released: the next attempt queues it.
		r.deliver(t, c, body, http.StatusAccepted)
		r.drainAll(t)
		r.wantState(t, c, "sqs-send", analysis.StateAnalyzed, "")
	})
	t.Run("secrets manager fails for the analyze function", func(t *testing.T) {
		r.deliver(t, c, c.job(23, "sm-token", true), 202)
		faults.fail(withOp(smFailing, "GetSecretValue", ""))
		back, receipts := s.drainWith(ctx, t)
		if hits := faults.fail(nil); hits == 0 || len(back) != 1 {
			t.Fatalf("token unreadable: %d messages back (fault hit %d times); want 1", len(back), hits)
		}
		r.again(t, receipts)
		r.drainAll(t)
		r.wantState(t, c, "sm-token", analysis.StateAnalyzed, "")
	})
	t.Run("dynamodb throttles storing the analysis", func(t *testing.T) {
		r.deliver(t, c, c.job(24, "ddb-analyze", true), 202)
		faults.fail(withOp(ddbThrottled, "TransactWriteItems", "ddb-analyze"))
		back, receipts := s.drainWith(ctx, t)
		if hits := faults.fail(nil); hits == 0 || len(back) != 1 {
			t.Fatalf("store throttled: %d messages back (fault hit %d times); want 1", len(back), hits)
		}
		r.again(t, receipts)
		r.drainAll(t)
		r.wantState(t, c, "ddb-analyze", analysis.StateAnalyzed, "")
	})
	t.Run("dynamodb conditional failure on a duplicate message", func(t *testing.T) {
		r.deliver(t, c, c.job(25, "dup", true), 202)
		ev := s.receive(t, s.queueURL)
		if len(ev.Records) != 1 {
			t.Fatalf("%d messages; want 1", len(ev.Records))
		}
		// SQS delivers at least once: two instances get the same message.
		payload, _ := json.Marshal(ev)
		var wg sync.WaitGroup
		var mu sync.Mutex
		failures := 0
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := s.analyze(ctx, payload)
				if err != nil {
					t.Errorf("analyze: %v", err)
				}
				mu.Lock()
				failures += len(resp.BatchItemFailures)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if failures == 0 {
			_, _ = k.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.queueURL), ReceiptHandle: aws.String(ev.Records[0].ReceiptHandle)})
		} else {
			r.again(t, []string{ev.Records[0].ReceiptHandle})
		}
		r.drainAll(t)
		r.wantState(t, c, "dup", analysis.StateAnalyzed, "")
		list, _, err := r.store.ListAnalyses(ctx, c.name, 100, "")
		n := 0
		for _, rec := range list {
			if rec.JobID == "dup" {
				n++
			}
		}
		if err != nil || n != 1 {
			t.Errorf("%d analyses of the duplicated job (%v); want 1", n, err)
		}
	})

	time.Sleep(1100 * time.Millisecond) // past the queue's visibility timeout
	if ev := s.receive(t, s.queueURL); len(ev.Records) != 0 {
		t.Errorf("%d messages left on the queue", len(ev.Records))
	}
	if dead := s.receive(t, s.dlqURL); len(dead.Records) != 0 {
		t.Errorf("%d messages dead-lettered; want none: %v", len(dead.Records), dead.Records[0].Body)
	}
	for _, f := range []*faultTenant{a, c} {
		if conn, err := r.conns.GetConnection(ctx, f.name); err != nil || conn.State != connection.StateConnected {
			t.Errorf("%s's connection after the faults: %s (%v); want connected", f.name, conn.State, err)
		}
	}
}

// errReader fails every read, as a dropped connection does.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
