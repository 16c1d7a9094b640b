package buildkite

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWindowLimiter(t *testing.T) {
	clk := newFakeClock()
	l := NewWindowLimiter(3, time.Minute, clk)
	ctx := context.Background()
	for i := range 3 {
		if err := l.Wait(ctx); err != nil {
			t.Fatalf("Wait %d: %v", i, err)
		}
	}
	if got := clk.slept(); len(got) != 0 {
		t.Fatalf("first 3 requests slept %v", got)
	}
	if err := l.Wait(ctx); err != nil {
		t.Fatalf("Wait 4: %v", err)
	}
	if diff := cmp.Diff([]time.Duration{time.Minute}, clk.slept()); diff != "" {
		t.Errorf("the 4th request waits for the 1st to leave the window (-want +got):\n%s", diff)
	}
}

func TestWindowLimiterNeverExceedsLimitInAnyWindow(t *testing.T) {
	clk := newFakeClock()
	start := clk.Now()
	l := NewWindowLimiter(DefaultRequestsPerWindow, DefaultLimitWindow, clk)
	var sent []time.Time
	for range 3*DefaultRequestsPerWindow + 7 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, clk.Now())
	}
	for i := range sent {
		n := 0
		for _, s := range sent[i:] {
			if s.Sub(sent[i]) < DefaultLimitWindow {
				n++
			}
		}
		if n > DefaultRequestsPerWindow {
			t.Fatalf("%d requests within a minute from %s", n, sent[i].Sub(start))
		}
	}
}

func TestWindowLimiterDeadline(t *testing.T) {
	clk := newFakeClock()
	l := NewWindowLimiter(1, time.Minute, clk)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want DeadlineExceeded without sleeping", err)
	}
	if got := clk.slept(); len(got) != 0 {
		t.Errorf("slept %v", got)
	}
}

func TestWindowLimiterDefer(t *testing.T) {
	clk := newFakeClock()
	l := NewWindowLimiter(50, time.Minute, clk)
	l.Defer(clk.Now().Add(12 * time.Second))
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{12 * time.Second}, clk.slept()); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestSharedLimiterPerToken(t *testing.T) {
	a, b := SharedLimiter("bkua_token_a_for_limiter_test"), SharedLimiter("bkua_token_a_for_limiter_test")
	if a != b {
		t.Error("two limiters for one token")
	}
	if SharedLimiter("bkua_token_b_for_limiter_test") == a {
		t.Error("one limiter for two tokens")
	}
	if New("bkua_token_a_for_limiter_test").limiter != a {
		t.Error("New does not use the shared limiter")
	}
}

func TestClientHonoursLimiter(t *testing.T) {
	srv, m := newServer(t, map[string]http.HandlerFunc{tokenRoute: okToken(t)})
	clk := newFakeClock()
	c := newTestClient(srv, clk, WithLimiter(NewWindowLimiter(2, time.Minute, clk)))
	for range 2 {
		if _, err := c.AccessToken(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The third waits a minute: more than the 10s call deadline.
	_, err := c.AccessToken(context.Background())
	if !errors.Is(err, ErrRateLimited) || !IsRetryable(err) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if n := m.count(tokenRoute); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestClientDefersWhenBuildkiteSaysWindowSpent(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		tokenRoute: serveFixture(t, http.StatusOK, "access_token.json", "RateLimit-Remaining", "0", "RateLimit-Reset", "9"),
	})
	clk := newFakeClock()
	c := newTestClient(srv, clk, WithLimiter(NewWindowLimiter(50, time.Minute, clk)))
	for range 2 {
		if _, err := c.AccessToken(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]time.Duration{9 * time.Second}, clk.slept()); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestLimiterCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	key := func(token string) [32]byte { return sha256.Sum256([]byte(token)) }
	c := newLimiterCache(3)
	a, b := c.get(key("a")), c.get(key("b"))
	c.get(key("c"))
	if c.get(key("a")) != a { // a is now the most recently used
		t.Fatal("a lost its limiter before the cache was full")
	}
	c.get(key("d")) // full: evicts b, the least recently used
	if got, want := c.len(), 3; got != want {
		t.Errorf("len = %d, want %d", got, want)
	}
	if c.get(key("a")) != a {
		t.Error("a, recently used, was evicted")
	}
	if c.get(key("b")) == b {
		t.Error("b, least recently used, was not evicted")
	}
	for i := range 100 {
		c.get(key(fmt.Sprintf("stream-%d", i)))
		if n := c.len(); n > 3 {
			t.Fatalf("len = %d after %d more tokens, want at most 3", n, i+1)
		}
	}
}

func TestSharedLimiterBounded(t *testing.T) {
	t.Parallel()
	for i := range maxSharedLimiters + 100 {
		SharedLimiter(fmt.Sprintf("bkua_bounded_test_token_%d", i))
	}
	if n := sharedLimiters.len(); n > maxSharedLimiters {
		t.Errorf("%d shared limiters, want at most %d", n, maxSharedLimiters)
	}
}

// BenchmarkSharedLimiterDistinctTokens sends one request's worth of limiter
// use for each of many distinct tokens, and reports the heap the limiters
// keep afterwards (retained-B, after a GC): it stays flat however many
// tokens pass, instead of growing with each.
func BenchmarkSharedLimiterDistinctTokens(b *testing.B) {
	for _, tokens := range []int{1_000, 20_000, 100_000} {
		b.Run(fmt.Sprintf("tokens=%d", tokens), func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			// Start empty, so that each size is measured alone (benchmarks
			// run after the tests, one at a time).
			sharedLimiters = newLimiterCache(maxSharedLimiters)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range b.N {
				for j := range tokens {
					tok := fmt.Sprintf("bkua_bench_%d_%d_%d", tokens, i, j)
					if err := SharedLimiter(tok).Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "retained-B")
			b.ReportMetric(float64(sharedLimiters.len()), "limiters")
		})
	}
}
