package analysis_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/syncbuf"
)

// TestRevokedBetweenStoreAndReport: a job's analysis is stored, its
// annotation fails for a moment, and before the message comes back the
// token is revoked. The next delivery fails the connection and finishes the
// stored analysis as reported, saying why there is no annotation or
// retry, instead of leaving it half done for ever.
func TestRevokedBetweenStoreAndReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 31, time.Now(), "job-31"))
	e.bk.SetLogText("job-31", testLog)
	e.bk.Fail("/builds/31/annotations", analysistest.Fault{Status: 502, Times: 10})
	msg := body(t, jobMessage(31, "job-31"))
	if out := e.w.HandleBody(context.Background(), msg, 1); out.Verdict != analysis.Later {
		t.Fatalf("first delivery: %v (%v); want later", out, out.Err)
	}
	if rec := e.analysis(t, "job-31"); rec.Reported || rec.State != analysis.StateAnalyzed {
		t.Fatalf("after the first delivery: state %s, reported %v; want analyzed, not reported", rec.State, rec.Reported)
	}

	e.conns.mu.Lock()
	e.conns.token = "bkua_revokedrevokedrevokedrevokedrevoked00"
	e.conns.mu.Unlock()
	out := e.w.HandleBody(context.Background(), msg, 2)
	if out.Verdict != analysis.Done {
		t.Fatalf("second delivery: %v (%v); want done", out, out.Err)
	}
	rec := e.analysis(t, "job-31")
	if !rec.Reported || rec.State != analysis.StateAnalyzed || rec.Category != "test" {
		t.Errorf("stored analysis: state %s, category %s, reported %v; want the analysis kept and reported", rec.State, rec.Category, rec.Reported)
	}
	if !strings.Contains(rec.Actions.AnnotationSkipped, "(401)") || rec.Actions.Annotated != nil {
		t.Errorf("annotation: %+v; want skipped with the 401", rec.Actions)
	}
	if conn, _ := e.conns.GetConnection(context.Background(), testTenant); conn.State != connection.StateFailed {
		t.Errorf("connection %s; want failed", conn.State)
	}
	// Once more, and another job of the tenant: done at once, recorded
	// failed, nothing asked of Buildkite with a token it rejected.
	calls := len(e.bk.Calls())
	if out := e.w.HandleBody(context.Background(), msg, 3); out.Verdict != analysis.Done {
		t.Errorf("third delivery: %v (%v)", out, out.Err)
	}
	if out := e.w.HandleBody(context.Background(), body(t, jobMessage(31, "job-32")), 1); out.Verdict != analysis.Done {
		t.Errorf("another job: %v (%v)", out, out.Err)
	}
	if rec := e.analysis(t, "job-32"); rec.State != analysis.StateFailed || !strings.Contains(rec.Error, "connect a token again") {
		t.Errorf("another job: %s %q; want failed, saying to connect again", rec.State, rec.Error)
	}
	if n := len(e.bk.Calls()) - calls; n != 0 {
		t.Errorf("%d requests after the connection failed; want none", n)
	}
}

// panickyBuildkite panics when asked for build 66: a bug met by one
// message only.
type panickyBuildkite struct{ analysis.Buildkite }

func (p panickyBuildkite) Build(ctx context.Context, org, pipeline string, number int) (buildkite.Build, error) {
	if number == 66 {
		panic("index out of range [3] with length 3")
	}
	return p.Buildkite.Build(ctx, org, pipeline, number)
}

// TestPanicIsOneMessagesPoison: a panic while processing one message of a
// batch neither crashes the process (which would send every message of the
// batch round again, towards the dead-letter queue) nor loses the others:
// that message goes towards the dead-letter queue, logged with its stack.
func TestPanicIsOneMessagesPoison(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	e := newEnv(t, allCaps, func(c *analysis.Config) {
		next := c.Buildkite
		c.Buildkite = func(token string, lim buildkite.Limiter) analysis.Buildkite {
			return panickyBuildkite{next(token, lim)}
		}
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 65, time.Now(), "fine"))
	e.bk.SetLogText("fine", testLog)
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", ReceiptHandle: "rh-m1", Body: string(body(t, jobMessage(65, "fine"))), Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
		{MessageId: "m2", ReceiptHandle: "rh-m2", Body: string(body(t, jobMessage(66, "bug"))), Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
	}}
	raw, _ := json.Marshal(ev)
	vis := &fakeRedelivery{}
	resp, err := e.w.LambdaHandler(vis)(context.Background(), raw)
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	if diff := cmp.Diff(events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "m2"}}}, resp); diff != "" {
		t.Errorf("batch response (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]time.Duration{"rh-m2": 0}, vis.changes); diff != "" {
		t.Errorf("visibility changes (-want +got):\n%s", diff)
	}
	e.analysis(t, "fine")
	out := logs.String()
	if n := strings.Count(out, "index out of range"); n != 1 || !strings.Contains(out, "goroutine") || !strings.Contains(out, `"job":"bug"`) {
		t.Errorf("want one log line with the panic, its stack and the job; got:\n%s", out)
	}
}
