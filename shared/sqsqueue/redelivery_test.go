package sqsqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/storage"
)

// fakeSQS records the calls of a Redelivery.
type fakeSQS struct {
	vis  *sqs.ChangeMessageVisibilityInput
	sent *sqs.SendMessageInput
	err  error
}

func (f *fakeSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.vis = in
	return &sqs.ChangeMessageVisibilityOutput{}, f.err
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.sent = in
	return &sqs.SendMessageOutput{MessageId: aws.String("new")}, f.err
}

func TestChangeVisibility(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delay time.Duration
		want  int32
	}{
		{0, 0},
		{-time.Second, 0},
		{1500 * time.Millisecond, 2},
		{7 * time.Second, 7},
		{24 * time.Hour, 43200},
	}
	for _, tt := range tests {
		f := &fakeSQS{}
		if err := NewRedelivery(f, "https://sqs.example/q").ChangeVisibility(context.Background(), "handle", tt.delay); err != nil {
			t.Fatalf("ChangeVisibility(%s): %v", tt.delay, err)
		}
		if f.vis.VisibilityTimeout != tt.want || aws.ToString(f.vis.ReceiptHandle) != "handle" || aws.ToString(f.vis.QueueUrl) != "https://sqs.example/q" {
			t.Errorf("ChangeVisibility(%s): sent %d s for %q on %q; want %d s", tt.delay, f.vis.VisibilityTimeout,
				aws.ToString(f.vis.ReceiptHandle), aws.ToString(f.vis.QueueUrl), tt.want)
		}
	}
	f := &fakeSQS{err: errors.New("boom")}
	if err := NewRedelivery(f, "u").ChangeVisibility(context.Background(), "h", time.Second); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("error %v, want storage.ErrUnavailable", err)
	}
}

func TestSendAgain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delay     time.Duration
		deferrals int
		wantDelay int32
		wantCount string
	}{
		{0, 1, 0, "1"},
		{-time.Second, 2, 0, "2"},
		{1500 * time.Millisecond, 3, 2, "3"},
		{61 * time.Second, 40, 61, "40"},
		{time.Hour, 100, 900, "100"},
	}
	for _, tt := range tests {
		f := &fakeSQS{}
		if err := NewRedelivery(f, "https://sqs.example/q").SendAgain(context.Background(), `{"a":1}`, tt.delay, tt.deferrals); err != nil {
			t.Fatalf("SendAgain(%s, %d): %v", tt.delay, tt.deferrals, err)
		}
		want := &sqs.SendMessageInput{
			QueueUrl:     aws.String("https://sqs.example/q"),
			MessageBody:  aws.String(`{"a":1}`),
			DelaySeconds: tt.wantDelay,
			MessageAttributes: map[string]types.MessageAttributeValue{
				DeferralsAttribute: {DataType: aws.String("Number"), StringValue: aws.String(tt.wantCount)},
			},
		}
		if diff := cmp.Diff(want, f.sent, cmp.AllowUnexported(types.MessageAttributeValue{}, sqs.SendMessageInput{})); diff != "" {
			t.Errorf("SendAgain(%s, %d) (-want +got):\n%s", tt.delay, tt.deferrals, diff)
		}
	}
}

func TestSendAgainFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		url, body   string
		err         error
		wantSent    bool
		unavailable bool
	}{
		{"SQS error", "https://sqs.example/q", "{}", errors.New("boom"), true, true},
		{"FIFO queue", "https://sqs.example/q.fifo", "{}", nil, false, false},
		{"empty body", "https://sqs.example/q", "", nil, false, false},
	}
	for _, tt := range tests {
		f := &fakeSQS{err: tt.err}
		err := NewRedelivery(f, tt.url).SendAgain(context.Background(), tt.body, time.Second, 1)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if got := errors.Is(err, storage.ErrUnavailable); got != tt.unavailable {
			t.Errorf("%s: error %v is ErrUnavailable: %v, want %v", tt.name, err, got, tt.unavailable)
		}
		if got := f.sent != nil; got != tt.wantSent {
			t.Errorf("%s: sent %v, want %v", tt.name, got, tt.wantSent)
		}
	}
}
