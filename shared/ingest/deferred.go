package ingest

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
)

// Deferred returns every SQS message as a batch item failure; a scheduled
// (non-SQS) invocation does nothing.
func Deferred(log *slog.Logger) func(ctx context.Context, raw json.RawMessage) (events.SQSEventResponse, error) {
	return func(ctx context.Context, raw json.RawMessage) (events.SQSEventResponse, error) {
		var ev events.SQSEvent
		_ = json.Unmarshal(raw, &ev)
		var resp events.SQSEventResponse
		for _, m := range ev.Records {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
		log.WarnContext(ctx, "analysis not enabled: messages returned to the queue", "messages", len(resp.BatchItemFailures))
		return resp, nil
	}
}
