package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/sqsqueue"
)

// Redelivery is how an SQS message the function did not finish is seen
// again.
type Redelivery interface {
	// ChangeVisibility makes a received message visible again after
	// delay. Each receive counts towards the queue's redrive to the
	// dead-letter queue.
	ChangeVisibility(ctx context.Context, receiptHandle string, delay time.Duration) error
	// SendAgain sends body as a new message, visible after delay (at most
	// fifteen minutes), that carries deferrals as its
	// sqsqueue.DeferralsAttribute. The new message's receive count starts
	// afresh.
	SendAgain(ctx context.Context, body string, delay time.Duration, deferrals int) error
}

const (
	// lambdaMargin is kept from the function's deadline for answering:
	// the re-sends, the visibility changes and the batch response.
	lambdaMargin = 10 * time.Second
	// maxRateDeferrals bounds how often a message that only waits for its
	// token's request budget is sent again as a new message, which does
	// not count towards the dead-letter queue; past it the message goes
	// back like any failure, so a token whose budget never frees cannot
	// keep it circulating for ever. With the spread below, 100 deferrals
	// wait about eleven hours on average; a burst of 500 failed jobs on
	// one token needed at most 13 in the load test.
	maxRateDeferrals = 100
	// rateSpreadStep widens the spread of a deferred message's delay with
	// each deferral (up to SQS's fifteen-minute limit), so a large backlog
	// does not come back all at once at the start of every minute, only
	// for most of it to be deferred again.
	rateSpreadStep = time.Minute
	// maxSendDelay is the longest delay SQS puts on a message it is sent.
	maxSendDelay = sqsqueue.MaxDelay
)

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
// A message that only waits for its token's request budget (the shared
// budget's minute is spent, or Buildkite answered 429 and said when its
// window resets) is sent again as a new message delayed by that wait, and
// reported done once the new one is sent: waiting is not failing, and
// must not bring it nearer the dead-letter queue. If the send fails, or
// the message was deferred maxRateDeferrals times already, it goes back
// like a transient failure. A message that fails for a transient reason
// is reported as a batch item failure and its visibility set to the wait
// it needs (a backoff). A poison message (not a queue
// message, or for an unknown tenant) is reported as a failure on every
// delivery with no delay, so the queue's redrive policy moves it to the
// dead-letter queue after maxReceiveCount; it is logged once, on its first
// delivery.
func (w *Worker) LambdaHandler(rd Redelivery) func(ctx context.Context, raw json.RawMessage) (events.SQSEventResponse, error) {
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
			return w.HandleSQS(ctx, ev, rd), nil
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
func (w *Worker) HandleSQS(ctx context.Context, ev events.SQSEvent, rd Redelivery) events.SQSEventResponse {
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
			failed[i] = !w.handleRecord(ctx, msg, rd)
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

// handleRecord processes one SQS message and reports whether it is done
// (and may be deleted).
func (w *Worker) handleRecord(ctx context.Context, msg events.SQSMessage, rd Redelivery) bool {
	receives, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	receives = max(receives, 1)
	out := w.HandleBody(ctx, []byte(msg.Body), receives)
	if out.Verdict == Done {
		return true
	}
	answerCtx := context.WithoutCancel(ctx)
	if out.Verdict == Later && waitsForRate(out.Err) {
		deferrals := deferralsOf(msg)
		if deferrals < maxRateDeferrals {
			delay := rateDeferralDelay(out.Delay, deferrals)
			err := rd.SendAgain(answerCtx, msg.Body, delay, deferrals+1)
			if err == nil {
				w.log.InfoContext(ctx, "message waiting for the request budget sent again", "message_id", msg.MessageId,
					"deferrals", deferrals+1, "delay", delay.String())
				return true
			}
			w.log.WarnContext(ctx, "send a message waiting for the request budget again; it goes back to the queue instead",
				"message_id", msg.MessageId, "err", err)
		} else {
			w.log.WarnContext(ctx, "message waited for the request budget too often; it goes back to the queue as a failure",
				"message_id", msg.MessageId, "deferrals", deferrals)
		}
	}
	// A poison message goes round again at once, towards the dead-letter
	// queue; a transient failure waits.
	delay := time.Duration(0)
	if out.Verdict == Later {
		delay = out.Delay
	}
	if err := rd.ChangeVisibility(answerCtx, msg.ReceiptHandle, delay); err != nil {
		w.log.WarnContext(ctx, "set the visibility of a message going back to the queue", "message_id", msg.MessageId, "err", err)
	}
	return false
}

// waitsForRate reports whether err says only that the token's requests
// are spent for now: the shared budget's minute, or Buildkite's 429 with
// the time its window resets.
func waitsForRate(err error) bool {
	if _, ok := budgetSpent(err); ok {
		return true
	}
	var apiErr *buildkite.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests && apiErr.RetryAfter > 0
}

// deferralsOf is how often msg was sent again for the request budget: its
// deferrals attribute, 0 when it has none (or one that is not a count).
func deferralsOf(msg events.SQSMessage) int {
	a, ok := msg.MessageAttributes[sqsqueue.DeferralsAttribute]
	if !ok || a.StringValue == nil {
		return 0
	}
	n, err := strconv.Atoi(*a.StringValue)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// rateDeferralDelay is the delay of a message sent again after deferrals
// earlier deferrals: the wait for the budget, plus a random share of up to
// deferrals times rateSpreadStep, at most maxSendDelay in all.
func rateDeferralDelay(wait time.Duration, deferrals int) time.Duration {
	wait = min(max(wait, time.Second), maxSendDelay)
	spread := min(time.Duration(deferrals)*rateSpreadStep, maxSendDelay-wait)
	if spread > 0 {
		wait += rand.N(spread + 1)
	}
	return wait
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
		level := slog.LevelWarn
		if waitsForRate(out.Err) {
			// Expected under a burst: the budget paces the work.
			level = slog.LevelInfo
		}
		w.log.Log(ctx, level, "message back to the queue", "tenant", m.TenantID, "org", m.Org, "pipeline", m.Pipeline,
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
