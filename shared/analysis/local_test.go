package analysis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/localstore"
)

// localQueue adapts the embedded queue to the pool.
type localQueue struct{ s *localstore.Store }

func (q localQueue) Receive(ctx context.Context, n int, vis time.Duration) ([]analysis.QueuedMessage, error) {
	msgs, err := q.s.Receive(ctx, n, vis)
	out := make([]analysis.QueuedMessage, len(msgs))
	for i, m := range msgs {
		out[i] = analysis.QueuedMessage{ID: m.ID, Body: m.Body, Receives: m.Receives}
	}
	return out, err
}

func (q localQueue) Delete(ctx context.Context, id string) error { return q.s.Delete(ctx, id) }

func (q localQueue) ChangeVisibility(ctx context.Context, id string, d time.Duration) error {
	return q.s.ChangeVisibility(ctx, id, d)
}

func TestPoolProcessesAndDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 30, time.Now(), "p1"))
	e.bk.SetLogText("p1", testLog)
	ctx := context.Background()
	if err := e.store.Send(ctx, body(t, jobMessage(30, "p1")), "job:p1"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Send(ctx, []byte(`{"kind":`), "poison"); err != nil {
		t.Fatal(err)
	}
	pool := analysis.NewPool(e.w, localQueue{e.store}, 2, time.Second)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); pool.Run(runCtx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		dead, err := e.store.DeadLetters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, aerr := e.store.GetAnalysis(ctx, testTenant, "job:p1")
		if len(dead) == 1 && aerr == nil {
			if !strings.HasPrefix(string(dead[0].Body), `{"kind":`) {
				t.Errorf("dead letter %q", dead[0].Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters %d, analysis %v after 20 s", len(dead), aerr)
		}
		pool.Wake()
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	if msgs, err := e.store.Receive(ctx, 10, time.Second); err != nil || len(msgs) != 0 {
		t.Errorf("messages left in the queue: %d (%v)", len(msgs), err)
	}
}
