package integration

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/sqsqueue"
)

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
			receive := func() events.SQSEvent { return receiveEvent(t, client, url) }
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
