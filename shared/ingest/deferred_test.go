package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

func TestDeferredReturnsEveryMessage(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		raw  string
		want []events.SQSBatchItemFailure
	}{
		{"sqs", `{"Records":[{"messageId":"a","eventSource":"aws:sqs"},{"messageId":"b","eventSource":"aws:sqs"}]}`,
			[]events.SQSBatchItemFailure{{ItemIdentifier: "a"}, {ItemIdentifier: "b"}}},
		{"schedule", `{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Deferred(log)(context.Background(), json.RawMessage(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.BatchItemFailures); diff != "" {
				t.Errorf("batch item failures (-want +got):\n%s", diff)
			}
		})
	}
}
