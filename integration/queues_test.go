package integration

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kitefix/kitefix/shared/sqsqueue"
)

// redriveReceives is the analyze queue's maxReceiveCount in the template:
// a message received more often than this goes to the dead-letter queue
// (the local queue of kitefix serve does the same).
const redriveReceives = 5

// makeRedriveQueues makes a queue named after name with the visibility
// timeout, whose redrive moves a message received more than
// redriveReceives times to a dead-letter queue of its own, and returns
// both URLs.
func makeRedriveQueues(tb testing.TB, k *kumoEnv, name string, visibility time.Duration) (queueURL, dlqURL string) {
	tb.Helper()
	ctx := context.Background()
	dlq, err := k.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(uniqueName(name + "-dlq"))})
	if err != nil {
		tb.Fatalf("create dead-letter queue: %v", err)
	}
	attrs, err := k.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		tb.Fatalf("dead-letter queue ARN: %v", err)
	}
	q, err := k.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(uniqueName(name)),
		Attributes: map[string]string{
			"VisibilityTimeout": strconv.Itoa(int(visibility / time.Second)),
			"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, attrs.Attributes["QueueArn"], redriveReceives),
		},
	})
	if err != nil {
		tb.Fatalf("create queue: %v", err)
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl)
}

// receiveEvent takes the visible messages of url (at most 10) as the SQS
// event Lambda's poller would hand the function.
func receiveEvent(tb testing.TB, client *sqs.Client, url string) events.SQSEvent {
	tb.Helper()
	out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		MessageAttributeNames:       allMessageAttributes,
	})
	if err != nil {
		tb.Fatalf("receive: %v", err)
	}
	var ev events.SQSEvent
	for _, m := range out.Messages {
		attrs := make(map[string]string, len(m.Attributes))
		maps.Copy(attrs, m.Attributes)
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Attributes: attrs, MessageAttributes: lambdaAttributes(m), EventSource: "aws:sqs", AWSRegion: kumoRegion,
		})
	}
	return ev
}

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
