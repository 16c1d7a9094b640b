package buildkite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"
)

const logRoute = "GET /v2/organizations/my-great-org/pipelines/my-pipeline/builds/42/jobs/b63254c0-3271-4a98-8270-7cfbd6c2f14e/log"

func openLog(c *Client, ctx context.Context) (io.ReadCloser, error) {
	return c.JobLog(ctx, "my-great-org", "my-pipeline", 42, "b63254c0-3271-4a98-8270-7cfbd6c2f14e")
}

// serveGenerated writes size bytes of log lines from a small buffer, never
// holding the whole log.
func serveGenerated(t *testing.T, size int64) http.HandlerFunc {
	line := []byte("--- running go test ./... \x1b[31mFAIL\x1b[0m TestFoo (0.01s) foo_test.go:12: want 1, got 2\n")
	chunk := bytes.Repeat(line, 64<<10/len(line))
	return func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Accept"); got != "text/plain" {
			t.Errorf("Accept = %q, want text/plain", got)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		for left := size; left > 0; {
			n := min(int64(len(chunk)), left)
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			left -= n
		}
	}
}

func TestJobLogStreamsWithoutBuffering(t *testing.T) {
	const size = 50 << 20
	srv, _ := newServer(t, map[string]http.HandlerFunc{logRoute: serveGenerated(t, size)})
	c := newTestClient(srv, newFakeClock())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rc, err := openLog(c, context.Background())
	if err != nil {
		t.Fatalf("JobLog: %v", err)
	}
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	runtime.ReadMemStats(&after)
	if n != size {
		t.Errorf("read %d bytes, want %d", n, size)
	}
	// Server and client together allocate far less than the log's size.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Errorf("allocated %d bytes streaming a %d-byte log: it was buffered", alloc, size)
	}
}

func TestJobLogErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler func(t *testing.T) http.HandlerFunc
		opts    []Option
		want    error
	}{
		{"404", func(t *testing.T) http.HandlerFunc { return serveFixture(t, 404, "error_404.json") }, nil, ErrNotFound},
		{"5xx exhausted", func(t *testing.T) http.HandlerFunc { return status(503, "") }, nil, ErrUnavailable},
		{"no headers before the deadline", func(t *testing.T) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
		}, []Option{WithTimeout(20 * time.Millisecond)}, ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, map[string]http.HandlerFunc{logRoute: tt.handler(t)})
			rc, err := openLog(newTestClient(srv, newFakeClock(), tt.opts...), context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if rc != nil {
				t.Error("a reader came with the error")
			}
		})
	}
}

func TestJobLogRetriedBeforeTheBody(t *testing.T) {
	srv, m := newServer(t, map[string]http.HandlerFunc{
		logRoute: sequence(status(502, ""), status(429, "", "RateLimit-Reset", "1"), serveGenerated(t, 1000)),
	})
	rc, err := openLog(newTestClient(srv, newFakeClock()), context.Background())
	if err != nil {
		t.Fatalf("JobLog: %v", err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil || n != 1000 {
		t.Fatalf("read %d bytes, err %v; want 1000, nil", n, err)
	}
	if got := m.count(logRoute); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
}

// stalling sends a first chunk, then nothing until the request is done.
func stalling(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("first line\n"))
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func TestJobLogIdleDeadline(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{logRoute: stalling})
	rc, err := openLog(newTestClient(srv, newFakeClock(), WithLogIdleTimeout(20*time.Millisecond)), context.Background())
	if err != nil {
		t.Fatalf("JobLog: %v", err)
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read err = %v, want ErrUnavailable", err)
	}
}

func TestJobLogCallerCancelWhileReading(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{logRoute: stalling})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := openLog(newTestClient(srv, newFakeClock(), WithLogIdleTimeout(0)), ctx)
	if err != nil {
		t.Fatalf("JobLog: %v", err)
	}
	defer rc.Close()
	buf := make([]byte, 64)
	if _, err := io.ReadAtLeast(rc, buf, len("first line\n")); err != nil {
		t.Fatalf("first read: %v", err)
	}
	cancel()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, context.Canceled) || IsRetryable(err) {
		t.Fatalf("read err = %v, want context.Canceled", err)
	}
}

func TestJobLogCloseTwice(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{logRoute: serveGenerated(t, 10)})
	rc, err := openLog(newTestClient(srv, newFakeClock()), context.Background())
	if err != nil {
		t.Fatalf("JobLog: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
