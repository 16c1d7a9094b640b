package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sivchari/kumo"

	"github.com/kitefix/kitefix/shared/sqsqueue"
	"github.com/kitefix/kitefix/shared/storage"
)

// createQueue makes a queue with a unique name (kumo state is shared by the
// test binary) and returns its URL. A name ending in ".fifo" makes a FIFO
// queue.
func createQueue(t *testing.T, env *kumoEnv, fifo bool) string {
	t.Helper()
	in := &sqs.CreateQueueInput{QueueName: aws.String(uniqueName("kitefix-analyze"))}
	if fifo {
		in.QueueName = aws.String(*in.QueueName + ".fifo")
		in.Attributes = map[string]string{"FifoQueue": "true"}
	}
	out, err := env.SQS.CreateQueue(context.Background(), in)
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	return aws.ToString(out.QueueUrl)
}

// receiveAll receives until the queue answers with no message and returns
// the bodies.
func receiveAll(t *testing.T, env *kumoEnv, url string) []string {
	t.Helper()
	var bodies []string
	for {
		out, err := env.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(url),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     0,
		})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(out.Messages) == 0 {
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			if _, err := env.SQS.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{
				QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				t.Fatalf("delete message: %v", err)
			}
		}
	}
}

func jobMessage(i int) []byte {
	return fmt.Appendf(nil, `{"tenant_id":"acme","org":"acme","pipeline":"app","build_number":%d,"job_id":"job-%d","reason":"webhook"}`, i, i)
}

func TestQueueSend(t *testing.T) {
	ctx := context.Background()
	env := startKumo(t)

	tests := []struct {
		name  string
		fifo  bool
		sends []int // job numbers, sent in order with dedupe id "job-<n>"
		want  []int
	}{
		{"standard", false, []int{1, 2}, []int{1, 2}},
		{"standard keeps repeats", false, []int{1, 1}, []int{1, 1}},
		{"fifo drops repeats", true, []int{1, 2, 1}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := createQueue(t, env, tt.fifo)
			q := sqsqueue.New(env.SQS, url)
			for _, n := range tt.sends {
				if err := q.Send(ctx, jobMessage(n), fmt.Sprintf("job-%d", n)); err != nil {
					t.Fatalf("Send(job-%d): %v", n, err)
				}
			}
			var want []string
			for _, n := range tt.want {
				want = append(want, string(jobMessage(n)))
			}
			got := receiveAll(t, env, url)
			if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("received bodies mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueueSendBatch(t *testing.T) {
	ctx := context.Background()
	env := startKumo(t)
	url := createQueue(t, env, false)
	q := sqsqueue.New(env.SQS, url)

	// 23 messages: three calls (10, 10, 3), and two empty bodies that
	// cannot be sent.
	var msgs []sqsqueue.Message
	var want []string
	for i := range 23 {
		m := sqsqueue.Message{Body: jobMessage(i), DedupeID: fmt.Sprintf("job-%d", i)}
		if i == 4 || i == 17 {
			m.Body = nil
		} else {
			want = append(want, string(m.Body))
		}
		msgs = append(msgs, m)
	}
	err := q.SendBatch(ctx, msgs)
	var batchErr *sqsqueue.BatchError
	if !errors.As(err, &batchErr) {
		t.Fatalf("SendBatch with two empty bodies: got error %v, want a *sqsqueue.BatchError", err)
	}
	if diff := cmp.Diff([]int{4, 17}, batchErr.Failed); diff != "" {
		t.Errorf("BatchError.Failed mismatch (-want +got):\n%s", diff)
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("SendBatch error %v does not wrap storage.ErrUnavailable", err)
	}
	got := receiveAll(t, env, url)
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("received bodies mismatch (-want +got):\n%s", diff)
	}

	if err := q.SendBatch(ctx, msgs[:3]); err != nil {
		t.Errorf("SendBatch of three good messages: %v", err)
	}
	if err := q.SendBatch(ctx, nil); err != nil {
		t.Errorf("SendBatch of nothing: %v", err)
	}
}

func TestQueueUnreachable(t *testing.T) {
	srv := kumo.NewServer()
	url := srv.URL
	srv.Close()

	client := newKumoSQS(kumoConfig(t), url, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	q := sqsqueue.New(client, url+"/000000000000/kitefix-analyze")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := q.Send(ctx, jobMessage(1), "job-1"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Send against a closed endpoint: got error %v, want storage.ErrUnavailable", err)
	}
	msgs := []sqsqueue.Message{{Body: jobMessage(1), DedupeID: "job-1"}, {Body: jobMessage(2), DedupeID: "job-2"}}
	err := q.SendBatch(ctx, msgs)
	var batchErr *sqsqueue.BatchError
	if !errors.As(err, &batchErr) || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("SendBatch against a closed endpoint: got error %v, want a *sqsqueue.BatchError wrapping storage.ErrUnavailable", err)
	}
	if diff := cmp.Diff([]int{0, 1}, batchErr.Failed); diff != "" {
		t.Errorf("BatchError.Failed mismatch (-want +got):\n%s", diff)
	}
}
