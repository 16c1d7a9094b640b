package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kitefix/kitefix/shared/queue"
)

// Visibility changes when an SQS message is seen again.
type Visibility interface {
	ChangeVisibility(ctx context.Context, receiptHandle string, delay time.Duration) error
}

// lambdaMargin is kept from the function's deadline for answering: the
// visibility changes and the batch response.
const lambdaMargin = 10 * time.Second

// invocation is the part of an invocation that tells an SQS batch from a
// scheduled event.
type invocation struct {
	Records    []json.RawMessage `json:"Records"`
	Source     string            `json:"source"`
	DetailType string            `json:"detail-type"`
}

// LambdaHandler is the analyze function: an SQS batch is processed with a
// partial batch response; an EventBridge scheduled event runs a reconcile
// pass.
//
// A message that fails for a transient reason is reported as a batch item
// failure and its visibility set to the wait it needs (Buildkite's
// RateLimit-Reset on a 429, else a backoff). A poison message (not a queue
// message, or for an unknown tenant) is reported as a failure on every
// delivery with no delay, so the queue's redrive policy moves it to the
// dead-letter queue after maxReceiveCount; it is logged once, on its first
// delivery.
func (w *Worker) LambdaHandler(vis Visibility) func(ctx context.Context, raw json.RawMessage) (events.SQSEventResponse, error) {
	return func(ctx context.Context, raw json.RawMessage) (events.SQSEventResponse, error) {
		var inv invocation
		if err := json.Unmarshal(raw, &inv); err != nil {
			return events.SQSEventResponse{}, fmt.Errorf("decode invocation: %w", err)
		}
		switch {
		case inv.Records != nil:
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return events.SQSEventResponse{}, fmt.Errorf("decode SQS event: %w", err)
			}
			return w.HandleSQS(ctx, ev, vis), nil
		case inv.Source == "aws.events" && inv.DetailType == "Scheduled Event":
			_, err := w.Reconcile(ctx)
			if err != nil {
				// Logged per tenant; the next scheduled pass covers it.
				w.log.ErrorContext(ctx, "reconcile pass incomplete", "err", err)
			}
			return events.SQSEventResponse{}, nil
		}
		return events.SQSEventResponse{}, errors.New("decode invocation: neither an SQS batch nor a scheduled event")
	}
}

// HandleSQS processes a batch concurrently and returns the messages to
// retry.
func (w *Worker) HandleSQS(ctx context.Context, ev events.SQSEvent, vis Visibility) events.SQSEventResponse {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-lambdaMargin))
		defer cancel()
	}
	failed := make([]bool, len(ev.Records))
	var wg sync.WaitGroup
	for i, msg := range ev.Records {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed[i] = !w.handleRecord(ctx, msg, vis)
		}()
	}
	wg.Wait()
	var resp events.SQSEventResponse
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp
}

// handleRecord processes one SQS message and reports whether it is done.
func (w *Worker) handleRecord(ctx context.Context, msg events.SQSMessage, vis Visibility) bool {
	receives, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	receives = max(receives, 1)
	out := w.HandleBody(ctx, []byte(msg.Body), receives)
	if out.Verdict == Done {
		return true
	}
	// A poison message goes round again at once, towards the dead-letter
	// queue; a transient failure waits.
	delay := time.Duration(0)
	if out.Verdict == Later {
		delay = out.Delay
	}
	answerCtx := context.WithoutCancel(ctx)
	if err := vis.ChangeVisibility(answerCtx, msg.ReceiptHandle, delay); err != nil {
		w.log.WarnContext(ctx, "set the visibility of a message going back to the queue", "message_id", msg.MessageId, "err", err)
	}
	return false
}

// HandleBody decodes and processes one queue message body (SQS or the
// local queue). Poison messages are logged on their first delivery.
func (w *Worker) HandleBody(ctx context.Context, body []byte, receives int) Outcome {
	m, err := queue.Decode(body)
	if err != nil {
		out := Outcome{Verdict: Poison, Err: err}
		w.logPoison(ctx, out, receives, "")
		return out
	}
	out := w.processSafely(ctx, m, receives)
	switch out.Verdict {
	case Poison:
		if !isPanic(out.Err) {
			w.logPoison(ctx, out, receives, m.TenantID)
		}
	case Later:
		w.log.WarnContext(ctx, "message back to the queue", "tenant", m.TenantID, "org", m.Org, "pipeline", m.Pipeline,
			"build", m.BuildNumber, "job", m.JobID, "receives", receives, "delay", out.Delay.String(), "err", out.Err)
	}
	return out
}

// processSafely is Process with a panic turned into the message's poison:
// a bug met by one message must not take the process down, and with it the
// other messages of its batch (sent round again towards the dead-letter
// queue) or the local worker. It is logged with its stack on every
// delivery: it is a bug to fix.
func (w *Worker) processSafely(ctx context.Context, m queue.Message, receives int) (out Outcome) {
	defer func() {
		if p := recover(); p != nil {
			out = Outcome{Verdict: Poison, Err: &panicError{value: p}}
			w.log.ErrorContext(ctx, "panic while processing a message: it goes to the dead-letter queue",
				"tenant", m.TenantID, "org", m.Org, "pipeline", m.Pipeline, "build", m.BuildNumber, "job", m.JobID,
				"receives", receives, "err", out.Err, "stack", string(debug.Stack()))
		}
	}()
	return w.Process(ctx, m, receives)
}

func (w *Worker) logPoison(ctx context.Context, out Outcome, receives int, tenant string) {
	if receives > 1 {
		return
	}
	w.log.ErrorContext(ctx, "poison message: it can never be processed and goes to the dead-letter queue", "tenant", tenant, "err", out.Err)
}

// panicError is a panic recovered while processing a message.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

func isPanic(err error) bool {
	var p *panicError
	return errors.As(err, &p)
}
