package analysis

import (
	"context"
	"errors"
	"testing"
	"time"
)

type countingBudget struct{ taken int }

func (c *countingBudget) TakeRequest(context.Context, string, time.Time, int) (bool, error) {
	c.taken++
	return c.taken <= RequestsPerMinute, nil
}

func TestBudgetLimiter(t *testing.T) {
	t.Parallel()
	// Real time, so that a context deadline relative to it is ahead.
	now := time.Now().Truncate(time.Minute).Add(30 * time.Second)
	b := &countingBudget{}
	l := newBudgetLimiter(b, "bkua_token", func() time.Time { return now })
	var slept []time.Duration
	l.sleep = func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		now = now.Add(d)
		b.taken = 0
		return nil
	}
	for range RequestsPerMinute + 1 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(slept) != 1 || slept[0] != 30*time.Second {
		t.Errorf("slept %v; want one 30 s wait for the next minute", slept)
	}
	if l.requests() != RequestsPerMinute+1 {
		t.Errorf("requests %d", l.requests())
	}

	// Buildkite said its window is spent: hold back until its reset, or
	// fail at once when the reset is past the deadline.
	l.Defer(now.Add(20 * time.Second))
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(5*time.Second))
	defer cancel()
	err := l.Wait(ctx)
	var spent *BudgetSpentError
	if !errors.As(err, &spent) || !spent.Until.Equal(now.Add(20*time.Second)) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait past the deadline: %v", err)
	}
	if d := retryDelay(err, 1, now); d != 20*time.Second {
		t.Errorf("delay %s, want 20s", d)
	}
}
