package buildkite

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const tokenRoute = "GET /v2/access-token"

func okToken(t *testing.T) http.HandlerFunc {
	return serveFixture(t, http.StatusOK, "access_token.json")
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		handler      func(t *testing.T) http.HandlerFunc
		opts         []Option
		wantErr      bool
		wantKinds    []error
		wantRetry    time.Duration // APIError.RetryAfter
		wantRequests int
		wantSleeps   []time.Duration // nil: any backoff, only counted
		wantNSleeps  int
	}{
		{
			name: "429 waits RateLimit-Reset then succeeds",
			handler: func(t *testing.T) http.HandlerFunc {
				return sequence(serveFixture(t, 429, "error_429.json", "RateLimit-Reset", "2", "RateLimit-Remaining", "0"), okToken(t))
			},
			wantRequests: 2, wantSleeps: []time.Duration{2 * time.Second}, wantNSleeps: 1,
		},
		{
			name: "429 waits the largest reset header",
			handler: func(t *testing.T) http.HandlerFunc {
				return sequence(serveFixture(t, 429, "error_429.json",
					"RateLimit-Reset", "1", "RateLimit-User-Reset", "7", "Retry-After", "3"), okToken(t))
			},
			wantRequests: 2, wantSleeps: []time.Duration{7 * time.Second}, wantNSleeps: 1,
		},
		{
			name: "429 exhausted",
			handler: func(t *testing.T) http.HandlerFunc {
				return serveFixture(t, 429, "error_429.json", "RateLimit-Reset", "1")
			},
			wantErr: true, wantKinds: []error{ErrRateLimited}, wantRetry: time.Second,
			wantRequests: 4, wantSleeps: []time.Duration{time.Second, time.Second, time.Second}, wantNSleeps: 3,
		},
		{
			name: "429 reset beyond the cap fails at once",
			handler: func(t *testing.T) http.HandlerFunc {
				return serveFixture(t, 429, "error_429.json", "RateLimit-Reset", "42")
			},
			wantErr: true, wantKinds: []error{ErrRateLimited}, wantRetry: 42 * time.Second, wantRequests: 1,
		},
		{
			name: "429 reset beyond the deadline fails at once",
			handler: func(t *testing.T) http.HandlerFunc {
				return serveFixture(t, 429, "error_429.json", "RateLimit-Reset", "8")
			},
			opts:    []Option{WithTimeout(5 * time.Second)},
			wantErr: true, wantKinds: []error{ErrRateLimited}, wantRetry: 8 * time.Second, wantRequests: 1,
		},
		{
			name: "5xx retried then succeeds",
			handler: func(t *testing.T) http.HandlerFunc {
				return sequence(status(503, `{"message":"down"}`), status(502, ""), okToken(t))
			},
			wantRequests: 3, wantNSleeps: 2,
		},
		{
			name: "5xx exhausted",
			handler: func(t *testing.T) http.HandlerFunc {
				return status(500, `{"message":"Internal Server Error"}`)
			},
			wantErr: true, wantKinds: []error{ErrUnavailable}, wantRequests: 4, wantNSleeps: 3,
		},
		{
			name: "no retries configured",
			handler: func(t *testing.T) http.HandlerFunc {
				return status(500, "")
			},
			opts:    []Option{WithMaxRetries(0)},
			wantErr: true, wantKinds: []error{ErrUnavailable}, wantRequests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, m := newServer(t, map[string]http.HandlerFunc{tokenRoute: tt.handler(t)})
			clk := newFakeClock()
			_, err := newTestClient(srv, clk, tt.opts...).AccessToken(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantKinds, kindsOf(err), cmpErrs()); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
			if tt.wantErr {
				var apiErr *APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("err %v is not an *APIError", err)
				}
				if apiErr.RetryAfter != tt.wantRetry {
					t.Errorf("RetryAfter = %s, want %s", apiErr.RetryAfter, tt.wantRetry)
				}
				if !IsRetryable(err) {
					t.Errorf("IsRetryable = false, want true")
				}
			}
			if n := m.count(tokenRoute); n != tt.wantRequests {
				t.Errorf("requests = %d, want %d", n, tt.wantRequests)
			}
			slept := clk.slept()
			if len(slept) != tt.wantNSleeps {
				t.Errorf("sleeps = %v, want %d of them", slept, tt.wantNSleeps)
			}
			if tt.wantSleeps != nil {
				if diff := cmp.Diff(tt.wantSleeps, slept); diff != "" {
					t.Errorf("sleeps (-want +got):\n%s", diff)
				}
			}
			for _, d := range slept {
				if d < 0 || d > DefaultMaxRateLimitWait {
					t.Errorf("sleep %s out of range", d)
				}
			}
		})
	}
}

func TestBackoffIsFullJitterAndCapped(t *testing.T) {
	c := New(testToken, WithLimiter(nil), WithBackoff(100*time.Millisecond, time.Second))
	for attempt := range 40 {
		ceiling := min(100*time.Millisecond<<min(attempt, 20), time.Second)
		for range 50 {
			if d := c.backoff(attempt); d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %s, want within [0, %s]", attempt, d, ceiling)
			}
		}
	}
}

func TestAnnotationRetryPolicy(t *testing.T) {
	const route = "POST /v2/organizations/o/pipelines/p/builds/1/annotations"
	created := func(t *testing.T) http.HandlerFunc { return serveFixture(t, http.StatusCreated, "annotation.json") }
	tests := []struct {
		name         string
		appendBody   bool
		handler      func(t *testing.T) http.HandlerFunc
		wantErr      error
		wantRequests int
	}{
		{"replace retried on 5xx", false, func(t *testing.T) http.HandlerFunc { return sequence(status(502, ""), created(t)) }, nil, 2},
		{"append not retried on 5xx", true, func(t *testing.T) http.HandlerFunc { return sequence(status(502, ""), created(t)) }, ErrUnavailable, 1},
		{"append retried on 429", true, func(t *testing.T) http.HandlerFunc {
			return sequence(status(429, "", "RateLimit-Reset", "1"), created(t))
		}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, m := newServer(t, map[string]http.HandlerFunc{route: tt.handler(t)})
			err := newTestClient(srv, newFakeClock()).CreateAnnotation(context.Background(), "o", "p", 1,
				Annotation{Context: "kitefix", Body: "x", Append: tt.appendBody})
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := m.count(route); n != tt.wantRequests {
				t.Errorf("requests = %d, want %d", n, tt.wantRequests)
			}
		})
	}
}

func TestNetworkErrorsRetriedThenUnavailable(t *testing.T) {
	ft := &failingTransport{}
	c := New(testToken, WithBaseURL("http://127.0.0.1:1"), WithLimiter(nil), WithClock(newFakeClock()),
		WithHTTPClient(&http.Client{Transport: ft}))
	_, err := c.Organizations(context.Background())
	if !errors.Is(err, ErrUnavailable) || !IsRetryable(err) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if ft.calls != 4 {
		t.Errorf("transport calls = %d, want 4", ft.calls)
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		tokenRoute: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	})
	_, err := newTestClient(srv, newFakeClock(), WithTimeout(20*time.Millisecond)).AccessToken(context.Background())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if !IsRetryable(err) {
		t.Error("IsRetryable = false, want true")
	}
}

func TestCallerCancel(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		tokenRoute: func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(started) })
			<-r.Context().Done()
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := newTestClient(srv, newFakeClock()).AccessToken(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if errors.Is(err, ErrUnavailable) || IsRetryable(err) {
		t.Errorf("a caller's cancellation must not look like an outage: %v", err)
	}
}

func TestAlreadyCancelledContextSendsNothing(t *testing.T) {
	srv, m := newServer(t, map[string]http.HandlerFunc{tokenRoute: okToken(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newTestClient(srv, newFakeClock()).AccessToken(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := m.count(tokenRoute); n != 0 {
		t.Errorf("requests = %d, want 0", n)
	}
}

func TestOversizedJSONRefused(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/organizations": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("["))
			chunk := []byte(`{"slug":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},`)
			for written := 0; written <= maxJSONBody; written += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			w.Write([]byte(`{}]`))
		},
	})
	_, err := newTestClient(srv, newFakeClock()).Organizations(context.Background())
	if err == nil {
		t.Fatal("no error for a JSON answer over the cap")
	}
}

func TestRetryAfterHeaderForms(t *testing.T) {
	now := time.Date(2025, 7, 23, 6, 7, 42, 0, time.UTC)
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"reset seconds", map[string]string{"RateLimit-Reset": "42"}, 42 * time.Second},
		{"user reset larger", map[string]string{"RateLimit-Reset": "4", "RateLimit-User-Reset": "17"}, 17 * time.Second},
		{"retry-after date", map[string]string{"Retry-After": "Wed, 23 Jul 2025 06:07:52 GMT"}, 10 * time.Second},
		{"garbage ignored", map[string]string{"RateLimit-Reset": "soon", "Retry-After": "-3"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if got := rateLimitWait(h, now); got != tt.want {
				t.Errorf("rateLimitWait = %s, want %s", got, tt.want)
			}
		})
	}
}
