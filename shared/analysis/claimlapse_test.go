package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/localstore"
)

// A webhook function that died between claiming a failed job and queuing
// it left a claim whose lease ran out after the previous reconcile pass had
// looked (and found the job claimed). The next pass must still list that
// build and queue the job, or it is lost.
func TestReconcileQueuesJobWhoseClaimLapsed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps, func(c *analysis.Config) { c.Deliveries = c.Store.(*localstore.Store) })
	ctx := context.Background()
	now := time.Now()
	finished := now.Add(-3 * time.Minute)
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 41, finished, "lapsed-1"))
	// Delivered 30 s after the build finished; the lease lapsed 30 s ago.
	if err := e.store.ClaimDelivery(ctx, testTenant, "job:lapsed-1", now.Add(-30*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The previous pass ran while the lease still held.
	if err := e.store.SetReconcileMark(ctx, testTenant, testOrg, now.Add(-45*time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := e.w.Reconcile(ctx)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if res.Queued != 1 || len(e.queue.sent) != 1 || e.queue.sent[0].JobID != "lapsed-1" {
		t.Fatalf("queued %d: %+v; want lapsed-1, whose claim lapsed after the previous pass", res.Queued, e.queue.sent)
	}
}
