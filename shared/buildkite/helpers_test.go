package buildkite

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const testToken = "bkua_0123456789abcdef0123456789abcdef01234567"

// mux routes "METHOD /escaped/path" to handlers and fails the test on any
// other request, and on requests without the expected headers.
type mux struct {
	t      *testing.T
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
}

func newServer(t *testing.T, routes map[string]http.HandlerFunc) (*httptest.Server, *mux) {
	t.Helper()
	m := &mux{t: t, routes: routes, hits: map[string]int{}}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return srv, m
}

func (m *mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.EscapedPath()
	m.mu.Lock()
	h, ok := m.routes[key]
	m.hits[key]++
	m.mu.Unlock()
	if !ok {
		m.t.Errorf("unexpected request %s", key)
		http.Error(w, `{"message":"unexpected"}`, http.StatusTeapot)
		return
	}
	if got, want := r.Header.Get("Authorization"), "Bearer "+testToken; got != want {
		m.t.Errorf("%s: Authorization = %q, want %q", key, got, want)
	}
	if got := r.Header.Get("User-Agent"); got != "kitefix" {
		m.t.Errorf("%s: User-Agent = %q, want kitefix", key, got)
	}
	h(w, r)
}

func (m *mux) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits[key]
}

// fakeClock advances only when slept on, recording each sleep.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return nil
}

func (f *fakeClock) slept() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// newTestClient is a client of srv with a fake clock and no client-side limiter.
func newTestClient(srv *httptest.Server, clk *fakeClock, opts ...Option) *Client {
	base := []Option{WithBaseURL(srv.URL), WithClock(clk), WithLimiter(nil)}
	return New(testToken, append(base, opts...)...)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveFixture answers with a testdata file, a status and headers.
func serveFixture(t *testing.T, status int, name string, headers ...string) http.HandlerFunc {
	body := fixture(t, name)
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// sequence answers each request with the next handler, repeating the last.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	i := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hs[min(i, len(hs)-1)]
		i++
		mu.Unlock()
		h(w, r)
	}
}

func status(code int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func timePtr(v time.Time) *time.Time { return &v }
