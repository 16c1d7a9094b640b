package analysis_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis/analysistest"
)

// fakeVisibility records the visibility changes.
type fakeVisibility struct {
	mu      sync.Mutex
	changes map[string]time.Duration
}

func (f *fakeVisibility) ChangeVisibility(_ context.Context, handle string, delay time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changes == nil {
		f.changes = map[string]time.Duration{}
	}
	f.changes[handle] = delay
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
	vis := &fakeVisibility{}
	resp, err := e.w.LambdaHandler(vis)(context.Background(), raw)
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if diff := cmp.Diff([]string{"m2", "m3"}, failed); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]time.Duration{"rh-m2": 7 * time.Second, "rh-m3": 0}, vis.changes); diff != "" {
		t.Errorf("visibility changes (-want +got):\n%s", diff)
	}
	e.analysis(t, "ok")
}

func TestLambdaHandlerSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 63, time.Now(), "missed"))
	raw := []byte(`{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","time":"2026-07-20T15:15:00Z","detail":{}}`)
	resp, err := e.w.LambdaHandler(&fakeVisibility{})(context.Background(), raw)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("schedule: %v %v", resp, err)
	}
	if len(e.queue.sent) != 1 || e.queue.sent[0].JobID != "missed" {
		t.Errorf("reconcile queued %+v; want the missed job", e.queue.sent)
	}
	if _, err := e.w.LambdaHandler(&fakeVisibility{})(context.Background(), []byte(`{"hello":1}`)); err == nil {
		t.Errorf("an unknown invocation was accepted")
	}
}
