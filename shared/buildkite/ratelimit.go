package buildkite

import (
	"container/list"
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
// the last n requests (allocated as they are made), so its memory is O(n). Safe for concurrent use.
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
	// sent grows as requests are made: most limiters see a few requests.
	return &WindowLimiter{n: n, window: window, clock: clock}
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

// maxSharedLimiters bounds how many per-token limiters a process keeps. A
// process serves a handful of tokens at a time (one per connected tenant it
// is working for), so 1024 keeps every token in use while capping the memory
// a stream of distinct tokens (say, guesses sent to the settings API) can
// take at about 1.5 MB. Evicting a limiter only forgets its recent sends:
// Buildkite's own 429s still pace a token that comes back.
const maxSharedLimiters = 1024

// sharedLimiters holds the limiters of the tokens used most recently in this
// process, keyed by the token's SHA-256 so that it never holds a token.
var sharedLimiters = newLimiterCache(maxSharedLimiters)

// SharedLimiter returns the process-wide limiter for token, which every
// Client made with New for that token uses unless WithLimiter says otherwise.
// Only the most recently asked-for tokens keep theirs (see maxSharedLimiters).
func SharedLimiter(token string) *WindowLimiter {
	return sharedLimiters.get(sha256.Sum256([]byte(token)))
}

// limiterCache is a least-recently-used set of limiters of at most max
// entries. Safe for concurrent use.
type limiterCache struct {
	max int

	mu      sync.Mutex
	order   *list.List // of *limiterEntry, most recently used first
	entries map[[sha256.Size]byte]*list.Element
}

type limiterEntry struct {
	key [sha256.Size]byte
	l   *WindowLimiter
}

func newLimiterCache(maxEntries int) *limiterCache {
	return &limiterCache{
		max:     max(maxEntries, 1),
		order:   list.New(),
		entries: make(map[[sha256.Size]byte]*list.Element),
	}
}

// get returns the limiter of key, making it (and evicting the least recently
// used one when full) if there is none.
func (c *limiterCache) get(key [sha256.Size]byte) *WindowLimiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*limiterEntry).l
	}
	for c.order.Len() >= c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*limiterEntry).key)
	}
	l := NewWindowLimiter(DefaultRequestsPerWindow, DefaultLimitWindow, nil)
	c.entries[key] = c.order.PushFront(&limiterEntry{key: key, l: l})
	return l
}

// len is how many limiters the cache holds.
func (c *limiterCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
