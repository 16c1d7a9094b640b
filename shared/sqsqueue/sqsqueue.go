// Package sqsqueue sends messages (the failed jobs the webhook function
// found) to an SQS queue.
//
// On a FIFO queue (URL ending in ".fifo") a message's dedupe id becomes its
// MessageDeduplicationId and its MessageGroupId, so SQS drops a repeat
// within its five-minute window and messages are not held behind one
// another. A standard queue has no such parameter: the id only names the
// message in errors, and idempotency comes from the consumer's conditional
// writes.
package sqsqueue

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kitefix/kitefix/shared/storage"
)

// MaxBatch is the most entries SQS takes in one SendMessageBatch call;
// SendBatch splits longer lists.
const MaxBatch = 10

// API is the part of the SQS client the Queue uses.
type API interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Queue sends to one queue.
type Queue struct {
	client API
	url    string
	fifo   bool
}

// New returns a Queue that sends to the queue at url (the QUEUE_URL
// variable).
func New(client API, url string) *Queue {
	return &Queue{client: client, url: url, fifo: strings.HasSuffix(url, ".fifo")}
}

// Message is one entry of SendBatch.
type Message struct {
	Body     []byte
	DedupeID string
}

// Send sends msg. Failures wrap storage.ErrUnavailable.
func (q *Queue) Send(ctx context.Context, msg []byte, dedupeID string) error {
	if len(msg) == 0 {
		return fmt.Errorf("send message %s: empty body", dedupeID)
	}
	in := &sqs.SendMessageInput{
		QueueUrl:    aws.String(q.url),
		MessageBody: aws.String(string(msg)),
	}
	if q.fifo {
		in.MessageDeduplicationId = aws.String(dedupeID)
		in.MessageGroupId = aws.String(dedupeID)
	}
	if _, err := q.client.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("send message %s: %w: %w", dedupeID, storage.ErrUnavailable, err)
	}
	return nil
}

// BatchError reports the entries of a SendBatch that were not sent.
type BatchError struct {
	// Failed holds the indexes (into SendBatch's msgs) of the entries that
	// were not sent, in increasing order.
	Failed []int
	// Err is the first failure.
	Err error
}

var _ error = (*BatchError)(nil)

// Error counts the entries SQS refused.
func (e *BatchError) Error() string {
	return fmt.Sprintf("send message batch: %d not sent: %v", len(e.Failed), e.Err)
}

// Unwrap returns storage.ErrUnavailable and the first failure.
func (e *BatchError) Unwrap() []error { return []error{storage.ErrUnavailable, e.Err} }

// SendBatch sends msgs in calls of at most MaxBatch entries. When some are
// not sent it returns a *BatchError (wrapping storage.ErrUnavailable) that
// lists them, so the caller can send just those again.
func (q *Queue) SendBatch(ctx context.Context, msgs []Message) error {
	var failed []int
	var first error
	fail := func(i int, err error) {
		failed = append(failed, i)
		if first == nil {
			first = err
		}
	}
	for start := 0; start < len(msgs); start += MaxBatch {
		chunk := msgs[start:min(start+MaxBatch, len(msgs))]
		entries := make([]types.SendMessageBatchRequestEntry, 0, len(chunk))
		for i, m := range chunk {
			if len(m.Body) == 0 {
				fail(start+i, fmt.Errorf("message %s: empty body", m.DedupeID))
				continue
			}
			e := types.SendMessageBatchRequestEntry{
				// Entry ids only need to be unique within the call.
				Id:          aws.String(strconv.Itoa(i)),
				MessageBody: aws.String(string(m.Body)),
			}
			if q.fifo {
				e.MessageDeduplicationId = aws.String(m.DedupeID)
				e.MessageGroupId = aws.String(m.DedupeID)
			}
			entries = append(entries, e)
		}
		if len(entries) == 0 {
			continue
		}
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{
			QueueUrl: aws.String(q.url),
			Entries:  entries,
		})
		if err != nil {
			for _, e := range entries {
				i, _ := strconv.Atoi(aws.ToString(e.Id))
				fail(start+i, err)
			}
			continue
		}
		for _, f := range out.Failed {
			i, convErr := strconv.Atoi(aws.ToString(f.Id))
			if convErr != nil || i < 0 || i >= len(chunk) {
				return fmt.Errorf("send message batch: %w: unknown entry id %q in the response", storage.ErrUnavailable, aws.ToString(f.Id))
			}
			fail(start+i, fmt.Errorf("message %s: %s: %s", chunk[i].DedupeID, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	slices.Sort(failed)
	return &BatchError{Failed: failed, Err: first}
}
