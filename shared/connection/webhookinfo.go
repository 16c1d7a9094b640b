package connection

import (
	"context"
	"slices"
	"time"
)

// WebhookEvents are the events to select in Buildkite's webhook settings:
// ping to check the URL and secret, job.finished for each failed job, and
// build.finished to catch a failed build whose job events were missed.
var WebhookEvents = []string{"ping", "build.finished", "job.finished"}

// WebhookSignature is what to choose for how Buildkite proves a delivery.
// A signature covers the body and a timestamp, so a captured delivery can
// be neither altered nor replayed; a token is accepted too.
const WebhookSignature = "signature (recommended): send the webhook secret as X-Buildkite-Signature; as X-Buildkite-Token it also works"

// DeliveryLog tells when a tenant's webhook last delivered. When the
// Records store given to the Service also implements it, status records
// show webhook.last_delivery_at.
type DeliveryLog interface {
	// LastDelivery returns the zero time when nothing was delivered yet.
	LastDelivery(ctx context.Context, tenant string) (time.Time, error)
}

// deliveryLogEraser forgets a tenant's last delivery. When the Records
// store implements it, a disconnect erases it with the rest of what the
// webhook owns: the webhook a later connect makes (a new id, a new secret)
// has delivered nothing, and its status must not say otherwise.
type deliveryLogEraser interface {
	ForgetLastDelivery(ctx context.Context, tenant string) error
}

// withSettings fills what to paste into Buildkite beside the URL.
func (w *Webhook) withSettings() {
	w.Events = slices.Clone(WebhookEvents)
	w.Signature = WebhookSignature
}

// withLastDelivery adds when the tenant's webhook last delivered, when the
// store knows. Failing to read it only leaves it out.
func (s *Service) withLastDelivery(ctx context.Context, tenant string, rec *Record) {
	dl, ok := s.records.(DeliveryLog)
	if !ok || rec.Webhook == nil {
		return
	}
	at, err := dl.LastDelivery(ctx, tenant)
	if err != nil {
		s.log.WarnContext(ctx, "read last webhook delivery", "tenant", tenant, "err", err)
		return
	}
	if !at.IsZero() {
		at = at.UTC()
		rec.Webhook.LastDeliveryAt = &at
	}
}
