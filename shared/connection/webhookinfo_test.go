package connection

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// deliveryRecords is memRecords that also knows the last delivery.
type deliveryRecords struct {
	*memRecords
	at  time.Time
	err error
}

func (d *deliveryRecords) LastDelivery(context.Context, string) (time.Time, error) {
	return d.at, d.err
}

var _ DeliveryLog = (*deliveryRecords)(nil)

func TestStatusShowsWebhookSettingsAndLastDelivery(t *testing.T) {
	h := newHarness()
	recs := &deliveryRecords{memRecords: h.records}
	h.svc.records = recs
	ctx := context.Background()
	rec, err := h.svc.Connect(ctx, "t1", goodToken)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(WebhookEvents, rec.Webhook.Events); diff != "" {
		t.Errorf("events after connect (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(rec.Webhook.Signature, "signature") {
		t.Errorf("signature = %q, want the signature mode recommended", rec.Webhook.Signature)
	}

	st, err := h.svc.Status(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Webhook.LastDeliveryAt != nil {
		t.Errorf("last_delivery_at = %v before any delivery", st.Webhook.LastDeliveryAt)
	}
	at := time.Date(2026, 7, 20, 15, 6, 41, 0, time.UTC)
	recs.at = at
	st, err = h.svc.Status(ctx, "t1")
	if err != nil || st.Webhook.LastDeliveryAt == nil || !st.Webhook.LastDeliveryAt.Equal(at) {
		t.Fatalf("last_delivery_at = %v, %v; want %v", st.Webhook.LastDeliveryAt, err, at)
	}
	b, err := json.Marshal(st.Webhook)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["last_delivery_at"] != "2026-07-20T15:06:41Z" || got["events"] == nil || got["signature"] == nil || got["secret"] != nil {
		t.Errorf("webhook object = %s", b)
	}

	// A store that cannot say leaves the time out; the status still answers.
	recs.err = errors.New("down")
	st, err = h.svc.Status(ctx, "t1")
	if err != nil || st.Webhook.LastDeliveryAt != nil {
		t.Errorf("status with the delivery log down = %v, %v", st.Webhook.LastDeliveryAt, err)
	}
}
