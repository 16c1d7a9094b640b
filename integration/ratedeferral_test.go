package integration

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kitefix/kitefix/shared/sqsqueue"
)

// allMessageAttributes asks ReceiveMessage for every message attribute,
// as Lambda's SQS poller does.
var allMessageAttributes = []string{"All"}

// lambdaAttributes is a received message's attributes as Lambda hands
// them to the function.
func lambdaAttributes(m sqstypes.Message) map[string]events.SQSMessageAttribute {
	if len(m.MessageAttributes) == 0 {
		return nil
	}
	attrs := make(map[string]events.SQSMessageAttribute, len(m.MessageAttributes))
	for k, v := range m.MessageAttributes {
		attrs[k] = events.SQSMessageAttribute{StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType)}
	}
	return attrs
}

// deferralsOf is a received message's deferral count, -1 without one.
func deferralsOf(m events.SQSMessage) int {
	a, ok := m.MessageAttributes[sqsqueue.DeferralsAttribute]
	if !ok || a.StringValue == nil {
		return -1
	}
	n, err := strconv.Atoi(*a.StringValue)
	if err != nil {
		return -1
	}
	return n
}

// queueCounts is how many messages of the queue at url are visible,
// delayed (sent with a delay not yet over) and in flight.
func queueCounts(t testing.TB, client *sqs.Client, url string) (visible, delayed, inFlight int) {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("queue attributes: %v", err)
	}
	n := func(name sqstypes.QueueAttributeName) int {
		v, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			t.Fatalf("queue attribute %s: %q", name, out.Attributes[string(name)])
		}
		return v
	}
	return n(sqstypes.QueueAttributeNameApproximateNumberOfMessages),
		n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed),
		n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
}

// receiveWithin calls receive until it returns a message, for at most
// timeout (a message sent with a delay shows up once the delay is over).
func receiveWithin(t testing.TB, timeout time.Duration, receive func() events.SQSEvent) events.SQSEvent {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		if ev := receive(); len(ev.Records) > 0 || time.Now().After(end) {
			return ev
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitVisible waits, at most timeout, until the queue at url has a
// visible message.
func waitVisible(t testing.TB, client *sqs.Client, url string, timeout time.Duration) {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		visible, delayed, inFlight := queueCounts(t, client, url)
		if visible > 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("no visible message after %s: %d delayed, %d in flight", timeout, delayed, inFlight)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
