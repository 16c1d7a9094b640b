package buildkite

import (
	"context"
	"time"

	"github.com/kitefix/kitefix/shared/ctxtime"
)

// Clock tells the time and sleeps. Tests replace it (WithClock) so that
// backoff and rate-limit waits take no real time.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx is done (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	return ctxtime.Sleep(ctx, d)
}
