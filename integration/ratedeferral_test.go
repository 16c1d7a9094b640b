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
	"github.com/google/go-cmp/cmp"

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

// TestRedeliveryOnKumoAndMoto checks what the analyze function relies on
// when a message waits for the request budget, against both fakes: a
// message sent again with a delay and a deferral count stays hidden for
// the delay, then arrives with the same body, the count as a Number
// attribute and a receive count starting at 1; a visibility change, by
// contrast, counts one more receive.
func TestRedeliveryOnKumoAndMoto(t *testing.T) {
	servers := []struct {
		name  string
		start func(t *testing.T) *sqs.Client
	}{
		{"kumo", func(t *testing.T) *sqs.Client { return startKumo(t).SQS }},
		{"moto", func(t *testing.T) *sqs.Client { return newKumoSQS(kumoConfig(t), startMoto(t).URL) }},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			client := srv.start(t)
			ctx := context.Background()
			q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(uniqueName("kitefix-redelivery"))})
			if err != nil {
				t.Fatalf("create queue: %v", err)
			}
			url := aws.ToString(q.QueueUrl)
			receive := func() events.SQSEvent {
				out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
					MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
					MessageAttributeNames:       allMessageAttributes,
				})
				if err != nil {
					t.Fatalf("receive: %v", err)
				}
				var ev events.SQSEvent
				for _, m := range out.Messages {
					ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
						Body: aws.ToString(m.Body), Attributes: m.Attributes, MessageAttributes: lambdaAttributes(m)})
				}
				return ev
			}
			if err := sqsqueue.New(client, url).Send(ctx, jobMessage(1), "job-1"); err != nil {
				t.Fatalf("send: %v", err)
			}
			first := receive()
			if len(first.Records) != 1 || deferralsOf(first.Records[0]) != -1 {
				t.Fatalf("first receive: %+v; want one message without a deferral count", first.Records)
			}
			rd := sqsqueue.NewRedelivery(client, url)
			if err := rd.SendAgain(ctx, first.Records[0].Body, 2*time.Second, 1); err != nil {
				t.Fatalf("send again: %v", err)
			}
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(first.Records[0].ReceiptHandle)}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if ev := receive(); len(ev.Records) != 0 {
				t.Fatalf("the message sent again with a 2 s delay was visible at once")
			}
			again := receiveWithin(t, 10*time.Second, receive)
			if len(again.Records) != 1 {
				t.Fatalf("the message sent again did not arrive: %d messages", len(again.Records))
			}
			m := again.Records[0]
			a := m.MessageAttributes[sqsqueue.DeferralsAttribute]
			got := []string{m.Body, m.Attributes["ApproximateReceiveCount"], a.DataType, aws.ToString(a.StringValue)}
			if diff := cmp.Diff([]string{string(jobMessage(1)), "1", "Number", "1"}, got); diff != "" {
				t.Errorf("sent again: body, receive count, attribute type and value (-want +got):\n%s", diff)
			}
			if err := rd.ChangeVisibility(ctx, m.ReceiptHandle, 0); err != nil {
				t.Fatalf("change visibility: %v", err)
			}
			back := receiveWithin(t, 5*time.Second, receive)
			if len(back.Records) != 1 || back.Records[0].Attributes["ApproximateReceiveCount"] != "2" || deferralsOf(back.Records[0]) != 1 {
				t.Errorf("after a visibility change: %+v; want the message with receive count 2 and its deferral count", back.Records)
			}
		})
	}
}
