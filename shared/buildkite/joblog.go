package buildkite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// JobLog opens a job's raw log (read_build_logs). The body is streamed as it
// arrives, never held whole; the caller must Close it. WithTimeout bounds
// getting the response headers; after that the stream lives until ctx is
// done, Close is called, or no byte arrives for WithLogIdleTimeout.
// A failure while reading is ErrUnavailable (or the caller's ctx error).
func (c *Client) JobLog(ctx context.Context, org, pipeline string, number int, jobID string) (io.ReadCloser, error) {
	rc, err := c.jobLog(ctx, org, pipeline, number, jobID)
	if err != nil {
		return nil, fmt.Errorf("fetch job log: %w", err)
	}
	return rc, nil
}

func (c *Client) jobLog(ctx context.Context, org, pipeline string, number int, jobID string) (io.ReadCloser, error) {
	path, err := jobPath(org, pipeline, number, jobID)
	if err != nil {
		return nil, err
	}
	r, err := c.newRequest(http.MethodGet, path+"/log", nil)
	if err != nil {
		return nil, err
	}
	r.accept = "text/plain"
	r.deadline = c.clock.Now().Add(c.timeout)

	// The body must outlive the header deadline, so the deadline cancels
	// ctx through a timer that is stopped once the headers are in.
	ctx, cancel := context.WithCancelCause(ctx)
	headerTimer := time.AfterFunc(c.timeout, func() { cancel(errCallTimeout) })
	resp, err := c.send(ctx, r)
	headerTimer.Stop()
	if err != nil {
		cancel(nil)
		return nil, err
	}
	return c.newLogBody(ctx, cancel, r, resp.Body), nil
}

// logBody is a streamed log with an idle deadline.
type logBody struct {
	c      *Client
	r      *request
	ctx    context.Context
	cancel context.CancelCauseFunc
	body   io.ReadCloser
	idle   *time.Timer // nil: no idle deadline
	once   sync.Once
}

func (c *Client) newLogBody(ctx context.Context, cancel context.CancelCauseFunc, r *request, body io.ReadCloser) *logBody {
	b := &logBody{c: c, r: r, ctx: ctx, cancel: cancel, body: body}
	if c.idleTimeout > 0 {
		b.idle = time.AfterFunc(c.idleTimeout, func() { cancel(errIdleTimeout) })
	}
	return b
}

func (b *logBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 && b.idle != nil {
		b.idle.Reset(b.c.idleTimeout)
	}
	if err == nil || errors.Is(err, io.EOF) {
		return n, err
	}
	if b.ctx.Err() != nil {
		return n, fmt.Errorf("read job log: %w", b.c.doneError(b.ctx, b.r, nil))
	}
	return n, fmt.Errorf("read job log: %w", b.c.unavailable(b.r, err))
}

// Close stops the stream; it is safe to call more than once.
func (b *logBody) Close() error {
	var err error
	b.once.Do(func() {
		if b.idle != nil {
			b.idle.Stop()
		}
		err = b.body.Close()
		b.cancel(context.Canceled)
	})
	return err
}
