// Package ingest holds the handlers of the webhook and analyze functions
// until webhook ingest and log analysis are wired to AWS. Both are honest
// placeholders: the webhook answers 503 so Buildkite shows the delivery as
// failed rather than silently dropped, and the analyzer hands every message
// back to SQS (a batch item failure), so nothing is lost: after the
// queue's maxReceiveCount the messages wait in the dead-letter queue.
package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
)

// NotEnabled answers every webhook delivery with 503.
func NotEnabled(log *slog.Logger) func(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	return func(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		log.WarnContext(ctx, "webhook delivery refused: ingest not enabled", "path", req.RawPath)
		body, _ := json.Marshal(map[string]string{"error": "webhook ingest is not enabled in this deployment"})
		return events.LambdaFunctionURLResponse{
			StatusCode: http.StatusServiceUnavailable,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       string(body),
		}, nil
	}
}

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
