package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kitefix/kitefix/shared/storage"
)

// MaxVisibility is the longest visibility timeout SQS accepts (12 hours).
const MaxVisibility = 12 * time.Hour

// MaxDelay is the longest DelaySeconds SQS accepts on a message (15
// minutes).
const MaxDelay = 15 * time.Minute

// DeferralsAttribute is the message attribute (a Number) that counts how
// often a message's body was sent again as a new, delayed message. The
// body is the queue's contract and stays as the webhook function wrote it;
// a message without the attribute was never sent again.
const DeferralsAttribute = "kitefix-deferrals"

// RedeliveryAPI is the part of the SQS client Redelivery uses.
type RedeliveryAPI interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Redelivery decides when a received message of one queue is seen again.
// The analyze function returns a failed message with a backoff by changing
// its visibility, which counts one more receive towards the queue's
// redrive to the dead-letter queue; a message that only waits for the
// rate budget is sent again as a new, delayed message instead, which
// starts its receive count afresh.
type Redelivery struct {
	client RedeliveryAPI
	url    string
	fifo   bool
}

// NewRedelivery returns a Redelivery for the queue at url.
func NewRedelivery(client RedeliveryAPI, url string) *Redelivery {
	return &Redelivery{client: client, url: url, fifo: strings.HasSuffix(url, ".fifo")}
}

// ChangeVisibility makes the message of receiptHandle visible again after
// delay, rounded up to whole seconds and capped at MaxVisibility; 0 makes
// it visible at once. Failures wrap storage.ErrUnavailable.
func (r *Redelivery) ChangeVisibility(ctx context.Context, receiptHandle string, delay time.Duration) error {
	_, err := r.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(r.url),
		ReceiptHandle:     aws.String(receiptHandle),
		VisibilityTimeout: seconds(delay, MaxVisibility),
	})
	if err != nil {
		return fmt.Errorf("change message visibility: %w: %w", storage.ErrUnavailable, err)
	}
	return nil
}

// errFIFODelay: a FIFO queue takes no per-message delay.
var errFIFODelay = errors.New("a FIFO queue takes no per-message delay")

// SendAgain sends body as a new message, visible after delay (rounded up
// to whole seconds, capped at MaxDelay), with DeferralsAttribute set to
// deferrals. The caller deletes the received message only once this
// returned nil, so a failure loses nothing. A FIFO queue has no
// per-message delay, so there it always fails. Failures wrap
// storage.ErrUnavailable.
func (r *Redelivery) SendAgain(ctx context.Context, body string, delay time.Duration, deferrals int) error {
	if r.fifo {
		return fmt.Errorf("send message again: %w", errFIFODelay)
	}
	if body == "" {
		return errors.New("send message again: empty body")
	}
	_, err := r.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:     aws.String(r.url),
		MessageBody:  aws.String(body),
		DelaySeconds: seconds(delay, MaxDelay),
		MessageAttributes: map[string]types.MessageAttributeValue{
			DeferralsAttribute: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(deferrals))},
		},
	})
	if err != nil {
		return fmt.Errorf("send message again: %w: %w", storage.ErrUnavailable, err)
	}
	return nil
}

// seconds is d in whole seconds, rounded up, between 0 and limit.
func seconds(d, limit time.Duration) int32 {
	return int32(math.Ceil(min(max(d, 0), limit).Seconds()))
}
