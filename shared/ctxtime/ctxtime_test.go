package ctxtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/ctxtime"
)

func TestSleep(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{name: "waits out d", ctx: context.Background(), d: time.Millisecond},
		{name: "no wait", ctx: context.Background(), d: 0},
		{name: "negative", ctx: context.Background(), d: -time.Second},
		{name: "done context, no wait", ctx: canceled, d: 0, want: context.Canceled},
		// An hour would fail the test run's timeout if Sleep did not stop.
		{name: "done context ends the wait", ctx: canceled, d: time.Hour, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ctxtime.Sleep(tt.ctx, tt.d); !errors.Is(got, tt.want) {
				t.Errorf("Sleep() = %v, want %v", got, tt.want)
			}
		})
	}
}
