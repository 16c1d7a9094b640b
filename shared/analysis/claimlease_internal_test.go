package analysis

import (
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/ingest"
)

// webhookDeliveryDelay bounds how long after a build finishes its webhook
// reaches kitefix: Buildkite sends within seconds, minutes when its own
// queue is backed up.
const webhookDeliveryDelay = 5 * time.Minute

// A webhook function that dies between claiming a failed job and queuing it
// leaves a claim that lapses ingest.ClaimLease after the delivery. The
// first pass to start after the lapse lists builds that finished since the
// previous pass's start (at the latest the lapse) less reconcileOverlap; the
// build finished webhookDeliveryDelay at most before the delivery, so the
// overlap must cover both or that job is never queued.
func TestReconcileOverlapOutlastsWebhookClaimLease(t *testing.T) {
	t.Parallel()
	finished := time.Date(2026, 7, 20, 15, 0, 0, 0, time.UTC)
	lapse := finished.Add(webhookDeliveryDelay).Add(ingest.ClaimLease)
	for _, previousStart := range []time.Time{lapse, lapse.Add(-time.Second), finished.Add(time.Second)} {
		if since := previousStart.Add(-reconcileOverlap); since.After(finished) {
			t.Errorf("a pass after a previous one at %v lists builds finished since %v: the build finished at %v, whose claim lapsed at %v, is missed",
				previousStart.Format(time.TimeOnly), since.Format(time.TimeOnly), finished.Format(time.TimeOnly), lapse.Format(time.TimeOnly))
		}
	}
}
