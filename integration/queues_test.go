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

// receiveEvent takes the visible messages of url on kumo (at most 10) as
// the SQS event Lambda's poller would hand the function.
func receiveEvent(tb testing.TB, k *kumoEnv, url string) events.SQSEvent {
	tb.Helper()
	out, err := k.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
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
