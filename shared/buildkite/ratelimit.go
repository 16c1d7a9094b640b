package buildkite

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// Limiter paces requests on the client side. Wait blocks until one request
// may be sent, or ctx is done.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Default client-side limit: Buildkite allows each user 50 REST requests a
// minute (and each organization 200).
const (
	DefaultRequestsPerWindow = 50
	DefaultLimitWindow       = time.Minute
)

// WindowLimiter allows at most n requests in any window of the given length.
// It is a sliding-window log rather than a token bucket: a bucket holding n
// tokens and refilling n per window lets 2n requests through in the first
// window, which Buildkite would answer with 429s. It keeps the send times of
// the last n requests, so its memory is O(n). Safe for concurrent use.
type WindowLimiter struct {
	n      int
	window time.Duration
	clock  Clock

	mu    sync.Mutex
	sent  []time.Time // ring of the last n send times
	next  int         // index of the oldest entry once the ring is full
	until time.Time   // no request before this (set from Buildkite's reset)
}

// NewWindowLimiter returns a limiter of n requests per window. A nil clock is
// the real one.
func NewWindowLimiter(n int, window time.Duration, clock Clock) *WindowLimiter {
	if n < 1 {
		n = 1
	}
	if clock == nil {
		clock = realClock{}
	}
	return &WindowLimiter{n: n, window: window, clock: clock, sent: make([]time.Time, 0, n)}
}

// Wait blocks until a request may be sent and records it as sent.
func (l *WindowLimiter) Wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := l.reserve()
		if d <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && l.clock.Now().Add(d).After(dl) {
			return fmt.Errorf("next request slot in %s: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
		}
		if err := l.clock.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// reserve records a send and returns 0, or returns how long to wait.
func (l *WindowLimiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if now.Before(l.until) {
		return l.until.Sub(now)
	}
	if len(l.sent) < l.n {
		l.sent = append(l.sent, now)
		return 0
	}
	oldest := l.sent[l.next]
	if wait := oldest.Add(l.window).Sub(now); wait > 0 {
		return wait
	}
	l.sent[l.next] = now
	l.next = (l.next + 1) % l.n
	return 0
}

// Defer holds every request back until t: Buildkite said the window is spent.
func (l *WindowLimiter) Defer(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.until) {
		l.until = t
	}
}

// deferrer is a Limiter that can be told Buildkite's window is spent.
type deferrer interface {
	Defer(t time.Time)
}

var _ Limiter = (*WindowLimiter)(nil)
var _ deferrer = (*WindowLimiter)(nil)

// sharedLimiters holds one limiter per token in this process, keyed by the
// token's SHA-256 so the map never holds a token.
var sharedLimiters sync.Map // [sha256.Size]byte → *WindowLimiter

// SharedLimiter returns the process-wide limiter for token, which every
// Client made with New for that token uses unless WithLimiter says otherwise.
func SharedLimiter(token string) *WindowLimiter {
	key := sha256.Sum256([]byte(token))
	if l, ok := sharedLimiters.Load(key); ok {
		return l.(*WindowLimiter)
	}
	l, _ := sharedLimiters.LoadOrStore(key, NewWindowLimiter(DefaultRequestsPerWindow, DefaultLimitWindow, nil))
	return l.(*WindowLimiter)
}
