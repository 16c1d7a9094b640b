package sqsqueue

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kitefix/kitefix/shared/storage"
)

// MaxVisibility is the longest visibility timeout SQS accepts (12 hours).
const MaxVisibility = 12 * time.Hour

// VisibilityAPI is the part of the SQS client Visibility uses.
type VisibilityAPI interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Visibility sets when a received message of one queue is delivered again:
// the analyze function returns a rate-limited message with the wait
// Buildkite asked for, and a failed one with a backoff.
type Visibility struct {
	client VisibilityAPI
	url    string
}

// NewVisibility returns a Visibility for the queue at url.
func NewVisibility(client VisibilityAPI, url string) *Visibility {
	return &Visibility{client: client, url: url}
}

// ChangeVisibility makes the message of receiptHandle visible again after
// delay, rounded up to whole seconds and capped at MaxVisibility; 0 makes
// it visible at once. Failures wrap storage.ErrUnavailable.
func (v *Visibility) ChangeVisibility(ctx context.Context, receiptHandle string, delay time.Duration) error {
	secs := int32(math.Ceil(min(max(delay, 0), MaxVisibility).Seconds()))
	_, err := v.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(v.url),
		ReceiptHandle:     aws.String(receiptHandle),
		VisibilityTimeout: secs,
	})
	if err != nil {
		return fmt.Errorf("change message visibility: %w: %w", storage.ErrUnavailable, err)
	}
	return nil
}
