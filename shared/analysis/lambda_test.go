package analysis_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/sqsqueue"
)

// fakeRedelivery records how messages go back to the queue.
type fakeRedelivery struct {
	mu      sync.Mutex
	changes map[string]time.Duration
	sent    []sentAgain
	// sendErr fails every SendAgain.
	sendErr error
}

// sentAgain is one SendAgain call.
type sentAgain struct {
	Body      string
	Delay     time.Duration
	Deferrals int
}

func (f *fakeRedelivery) ChangeVisibility(_ context.Context, handle string, delay time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changes == nil {
		f.changes = map[string]time.Duration{}
	}
	f.changes[handle] = delay
	return nil
}

func (f *fakeRedelivery) SendAgain(_ context.Context, body string, delay time.Duration, deferrals int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return f.sendErr
	}
	f.sent = append(f.sent, sentAgain{Body: body, Delay: delay, Deferrals: deferrals})
	return nil
}

func TestLambdaHandlerBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 61, time.Now(), "ok"))
	e.bk.SetLogText("ok", testLog)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 62, time.Now(), "limited"))
	e.bk.Fail("/builds/62", analysistest.Fault{Status: 429, Header: map[string]string{"RateLimit-Reset": "7"}})
	rec := func(id, receives string, body []byte) events.SQSMessage {
		return events.SQSMessage{MessageId: id, ReceiptHandle: "rh-" + id, Body: string(body), EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": receives}}
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{
		rec("m1", "1", body(t, jobMessage(61, "ok"))),
		rec("m2", "1", body(t, jobMessage(62, "limited"))),
		rec("m3", "4", []byte("not json")),
	}}
	raw, _ := json.Marshal(ev)
	rd := &fakeRedelivery{}
	resp, err := e.w.LambdaHandler(rd)(context.Background(), raw)
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	// The rate-limited message is sent again with Buildkite's wait and
	// reported done; the poison one goes round again at once.
	if diff := cmp.Diff([]string{"m3"}, failed); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]time.Duration{"rh-m3": 0}, rd.changes); diff != "" {
		t.Errorf("visibility changes (-want +got):\n%s", diff)
	}
	want := []sentAgain{{Body: ev.Records[1].Body, Delay: 7 * time.Second, Deferrals: 1}}
	if diff := cmp.Diff(want, rd.sent); diff != "" {
		t.Errorf("sent again (-want +got):\n%s", diff)
	}
	e.analysis(t, "ok")
}

func TestLambdaHandlerSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 63, time.Now(), "missed"))
	raw := []byte(`{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","time":"2026-07-20T15:15:00Z","detail":{}}`)
	resp, err := e.w.LambdaHandler(&fakeRedelivery{})(context.Background(), raw)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("schedule: %v %v", resp, err)
	}
	if len(e.queue.sent) != 1 || e.queue.sent[0].JobID != "missed" {
		t.Errorf("reconcile queued %+v; want the missed job", e.queue.sent)
	}
	if _, err := e.w.LambdaHandler(&fakeRedelivery{})(context.Background(), []byte(`{"hello":1}`)); err == nil {
		t.Errorf("an unknown invocation was accepted")
	}
}

// spentBudget is a request budget that is always spent.
type spentBudget struct{}

func (spentBudget) TakeRequest(context.Context, string, time.Time, int) (bool, error) {
	return false, nil
}

// TestLambdaHandlerRateDeferral: a message that only waits for the request
// budget is sent again as a new, delayed message carrying one more
// deferral and reported done; past the bound, or when the send fails, or
// for a failure that is not the budget, it goes back as a batch item
// failure with a visibility change, so it is never lost.
func TestLambdaHandlerRateDeferral(t *testing.T) {
	t.Parallel()
	// A clock an hour ahead: the budget's next minute is always past the
	// invocation's deadline, so the worker answers at once.
	now := time.Now().Add(time.Hour).Truncate(time.Minute).Add(20 * time.Second)
	wait := 40 * time.Second
	tests := []struct {
		name      string
		deferrals string // the message's deferrals attribute; "" for none
		sendErr   error
		fault     *analysistest.Fault
		// wantSent is the deferral count sent again, 0 for no send.
		wantSent int
		// wantMaxDelay bounds the delay sent again.
		wantMaxDelay time.Duration
		// wantVisibility is the visibility change of a batch item failure.
		wantVisibility bool
	}{
		{name: "first wait", wantSent: 1, wantMaxDelay: wait},
		{name: "third wait spreads", deferrals: "2", wantSent: 3, wantMaxDelay: wait + 2*time.Minute},
		{name: "long backlog capped", deferrals: "40", wantSent: 41, wantMaxDelay: 15 * time.Minute},
		{name: "unreadable count", deferrals: "many", wantSent: 1, wantMaxDelay: wait},
		{name: "bound reached", deferrals: "100", wantVisibility: true},
		{name: "send fails", sendErr: errors.New("SQS down"), wantVisibility: true},
		{name: "server error", fault: &analysistest.Fault{Status: 502, Times: 100}, wantVisibility: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, allCaps, func(c *analysis.Config) {
				c.Now = func() time.Time { return now }
				if tt.fault == nil {
					c.Budget = spentBudget{}
				}
			})
			e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 70, time.Now(), "j70"))
			e.bk.SetLogText("j70", testLog)
			if tt.fault != nil {
				e.bk.Fail("/builds/70", *tt.fault)
			}
			msg := events.SQSMessage{MessageId: "m1", ReceiptHandle: "rh-m1", Body: string(body(t, jobMessage(70, "j70"))),
				EventSource: "aws:sqs", Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
			if tt.deferrals != "" {
				msg.MessageAttributes = map[string]events.SQSMessageAttribute{
					sqsqueue.DeferralsAttribute: {StringValue: &tt.deferrals, DataType: "Number"},
				}
			}
			raw, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{msg}})
			rd := &fakeRedelivery{sendErr: tt.sendErr}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			resp, err := e.w.LambdaHandler(rd)(ctx, raw)
			if err != nil {
				t.Fatalf("handler: %v", err)
			}
			gotFailed := len(resp.BatchItemFailures) == 1 && resp.BatchItemFailures[0].ItemIdentifier == "m1"
			if gotFailed != tt.wantVisibility {
				t.Errorf("batch item failures %+v; want m1 failed: %v", resp.BatchItemFailures, tt.wantVisibility)
			}
			_, changed := rd.changes["rh-m1"]
			if changed != tt.wantVisibility {
				t.Errorf("visibility changes %v; want one for rh-m1: %v", rd.changes, tt.wantVisibility)
			}
			if tt.wantSent == 0 {
				if len(rd.sent) != 0 {
					t.Errorf("sent again %+v; want nothing", rd.sent)
				}
				if tt.fault == nil && rd.changes["rh-m1"] != wait {
					t.Errorf("visibility %s; want the budget's wait %s", rd.changes["rh-m1"], wait)
				}
				return
			}
			if len(rd.sent) != 1 {
				t.Fatalf("sent again %+v; want one message", rd.sent)
			}
			got := rd.sent[0]
			if got.Body != msg.Body || got.Deferrals != tt.wantSent || got.Delay < wait || got.Delay > tt.wantMaxDelay {
				t.Errorf("sent again %d deferrals after %s; want the same body, %d deferrals, a delay in [%s, %s]",
					got.Deferrals, got.Delay, tt.wantSent, wait, tt.wantMaxDelay)
			}
			if n := len(e.bk.Calls()); n != 0 {
				t.Errorf("%d Buildkite calls with the budget spent", n)
			}
		})
	}
}
