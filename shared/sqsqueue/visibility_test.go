package sqsqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kitefix/kitefix/shared/storage"
)

type fakeVisibility struct {
	in  *sqs.ChangeMessageVisibilityInput
	err error
}

func (f *fakeVisibility) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.in = in
	return &sqs.ChangeMessageVisibilityOutput{}, f.err
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
		f := &fakeVisibility{}
		if err := NewVisibility(f, "https://sqs.example/q").ChangeVisibility(context.Background(), "handle", tt.delay); err != nil {
			t.Fatalf("ChangeVisibility(%s): %v", tt.delay, err)
		}
		if f.in.VisibilityTimeout != tt.want || aws.ToString(f.in.ReceiptHandle) != "handle" || aws.ToString(f.in.QueueUrl) != "https://sqs.example/q" {
			t.Errorf("ChangeVisibility(%s): sent %d s for %q on %q; want %d s", tt.delay, f.in.VisibilityTimeout,
				aws.ToString(f.in.ReceiptHandle), aws.ToString(f.in.QueueUrl), tt.want)
		}
	}
	f := &fakeVisibility{err: errors.New("boom")}
	if err := NewVisibility(f, "u").ChangeVisibility(context.Background(), "h", time.Second); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("error %v, want storage.ErrUnavailable", err)
	}
}
