package analysis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/ctxtime"
)

// RequestsPerMinute is each token's share of Buildkite's REST limit: the
// budget every kitefix process that uses the token draws from together.
const RequestsPerMinute = buildkite.DefaultRequestsPerWindow

// BudgetKey names a token's budget without holding the token: the first
// 128 bits of its SHA-256, in hex.
func BudgetKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:16])
}

// BudgetSpentError says the token's requests for this minute are spent and
// no slot opens before the caller's deadline.
type BudgetSpentError struct {
	// Until is when the next minute, and so the next slot, begins.
	Until time.Time
}

// Error says when the budget renews.
func (e *BudgetSpentError) Error() string {
	return fmt.Sprintf("request budget spent until %s", e.Until.UTC().Format(time.RFC3339))
}

// Is makes the error a context.DeadlineExceeded: the limiter could not wait.
func (e *BudgetSpentError) Is(target error) bool { return target == context.DeadlineExceeded }

// budgetCounter is a Budget that also says how many requests of the
// minute are counted once it took one.
type budgetCounter interface {
	TakeRequestCount(ctx context.Context, key string, window time.Time, limit int) (count int, ok bool, err error)
}

// budgetLimiter is a buildkite.Limiter that takes each request from the
// shared per-minute budget, waiting for the next minute when it is spent,
// and counts the requests it let through.
type budgetLimiter struct {
	budget Budget
	key    string
	limit  int
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	sent   atomic.Int64
	// until holds requests back after Buildkite said its window is spent
	// (unix nanoseconds; 0: no hold).
	until atomic.Int64
	// counted is the count of the minute countWindow (unix seconds) as
	// of the last request taken.
	countWindow atomic.Int64
	counted     atomic.Int64
}

var _ buildkite.Limiter = (*budgetLimiter)(nil)

func newBudgetLimiter(b Budget, token string, now func() time.Time) *budgetLimiter {
	return &budgetLimiter{budget: b, key: BudgetKey(token), limit: RequestsPerMinute, now: now, sleep: ctxtime.Sleep}
}

// Wait takes one request from the budget.
func (l *budgetLimiter) Wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := l.now()
		if hold := time.Unix(0, l.until.Load()); l.until.Load() != 0 && now.Before(hold) {
			if dl, has := ctx.Deadline(); has && hold.After(dl) {
				return &BudgetSpentError{Until: hold}
			}
			if err := l.sleep(ctx, hold.Sub(now)); err != nil {
				return err
			}
			continue
		}
		window := now.Truncate(time.Minute)
		if l.budget != nil {
			ok, err := l.take(ctx, window)
			if err != nil {
				return fmt.Errorf("take a request from the budget: %w", err)
			}
			if !ok {
				next := window.Add(time.Minute)
				if dl, has := ctx.Deadline(); has && next.After(dl) {
					return &BudgetSpentError{Until: next}
				}
				if err := l.sleep(ctx, next.Sub(now)); err != nil {
					return err
				}
				continue
			}
		}
		l.sent.Add(1)
		return nil
	}
}

// Defer holds every request back until t: Buildkite answered with
// RateLimit-Remaining: 0 and said when its window resets. The Buildkite
// client calls it.
func (l *budgetLimiter) Defer(t time.Time) {
	for {
		cur := l.until.Load()
		if t.UnixNano() <= cur || l.until.CompareAndSwap(cur, t.UnixNano()) {
			return
		}
	}
}

// take takes one request of window from the budget, noting the count
// when the budget tells it.
func (l *budgetLimiter) take(ctx context.Context, window time.Time) (bool, error) {
	cb, ok := l.budget.(budgetCounter)
	if !ok {
		return l.budget.TakeRequest(ctx, l.key, window, l.limit)
	}
	n, ok, err := cb.TakeRequestCount(ctx, l.key, window, l.limit)
	if err == nil {
		if !ok {
			n = l.limit
		}
		l.counted.Store(int64(n))
		l.countWindow.Store(window.Unix())
	}
	return ok, err
}

// left is how many of the token's requests of the current minute are
// left, as of the last request this limiter took; known is false when it
// took none this minute or the budget does not count.
func (l *budgetLimiter) left() (n int, known bool) {
	if l.countWindow.Load() != l.now().Truncate(time.Minute).Unix() {
		return 0, false
	}
	return l.limit - int(l.counted.Load()), true
}

// requests is how many requests the limiter let through.
func (l *budgetLimiter) requests() int { return int(l.sent.Load()) }

// budgetSpent returns the error's BudgetSpentError, if it has one.
func budgetSpent(err error) (*BudgetSpentError, bool) {
	var e *BudgetSpentError
	ok := errors.As(err, &e)
	return e, ok
}
