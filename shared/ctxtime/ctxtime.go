// Package ctxtime holds waits that end early when their context is done.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx is done, then it returns ctx.Err(). A d
// of zero or less does not wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
