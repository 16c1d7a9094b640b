package buildkite

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// send sends r until it gets a 2xx answer, which it returns with the body
// open, or until a failure it must not retry. ctx is the call's context.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	var last error
	for attempt := 0; ; attempt++ {
		if err := c.waitLimiter(ctx, r); err != nil {
			return nil, err
		}
		resp, err := c.attempt(ctx, r)
		if err == nil && resp.StatusCode/100 == 2 {
			return resp, nil
		}
		if ctx.Err() != nil {
			closeBody(resp)
			return nil, c.doneError(ctx, r, last)
		}
		wait, failure, retry := c.judge(r, resp, err, attempt)
		if !retry || attempt >= c.maxRetries {
			return nil, failure
		}
		if c.pastDeadline(ctx, r, wait) {
			return nil, failure
		}
		last = failure
		c.log.LogAttrs(ctx, slog.LevelWarn, "buildkite request failed; retrying",
			slog.String("method", r.method), slog.String("path", r.path()),
			slog.Int("attempt", attempt+1), slog.Duration("wait", wait),
			slog.String("error", failure.Error()))
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return nil, c.doneError(ctx, r, last)
		}
	}
}

// attempt sends r once.
func (c *Client) attempt(ctx context.Context, r *request) (*http.Response, error) {
	req, err := c.httpRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	c.noteRateLimit(resp.Header)
	return resp, nil
}

// judge turns a failed attempt into its error, whether to retry it and how
// long to wait first. It closes the response body.
func (c *Client) judge(r *request, resp *http.Response, err error, attempt int) (time.Duration, error, bool) {
	if err != nil {
		return c.backoff(attempt), c.unavailable(r, err), r.policy == retryAll
	}
	defer closeBody(resp)
	apiErr := &APIError{
		StatusCode: resp.StatusCode,
		Method:     r.method,
		Path:       r.path(),
	}
	if resp.StatusCode/100 == 3 {
		// Nothing of a redirect is trusted, not even its body.
		apiErr.Message = "redirect not followed: Buildkite's API answers without redirects; check the API URL"
		return 0, apiErr, false
	}
	apiErr.Message = c.redact(errorMessage(resp))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		apiErr.RetryAfter = rateLimitWait(resp.Header, c.clock.Now())
		if apiErr.RetryAfter > c.maxRateWait {
			return 0, apiErr, false
		}
		wait := apiErr.RetryAfter
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		return wait, apiErr, true
	case resp.StatusCode >= 500:
		return c.backoff(attempt), apiErr, r.policy == retryAll
	}
	return 0, apiErr, false
}

// pastDeadline reports whether waiting d would pass the call's deadline.
func (c *Client) pastDeadline(ctx context.Context, r *request, d time.Duration) bool {
	deadline := r.deadline
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	return !deadline.IsZero() && c.clock.Now().Add(d).After(deadline)
}

// backoff is the full-jitter exponential backoff before retry attempt+1: a
// random wait in [0, min(max, base·2^attempt)].
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.backoffMax
	if attempt < 30 {
		if d := c.backoffBase << attempt; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return rand.N(ceiling + 1)
}

// waitLimiter waits for the client-side limiter. Running out of time there
// is ErrRateLimited: Buildkite was never asked.
func (c *Client) waitLimiter(ctx context.Context, r *request) error {
	if c.limiter == nil {
		return nil
	}
	err := c.limiter.Wait(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		var t *callTimeout
		if !errors.As(context.Cause(ctx), &t) {
			return c.doneError(ctx, r, nil)
		}
	}
	return &limitedError{msg: "buildkite: " + r.method + " " + r.path() + ": client-side rate limit: no slot before the deadline", cause: err}
}

// limitedError is a request held back by the client-side limiter.
type limitedError struct {
	msg   string
	cause error
}

func (e *limitedError) Error() string   { return e.msg }
func (e *limitedError) Unwrap() []error { return []error{ErrRateLimited, e.cause} }

// noteRateLimit tells the limiter when Buildkite says the window is spent.
func (c *Client) noteRateLimit(h http.Header) {
	d, ok := c.limiter.(deferrer)
	if !ok || strings.TrimSpace(h.Get("RateLimit-Remaining")) != "0" {
		return
	}
	now := c.clock.Now()
	if wait := rateLimitWait(h, now); wait > 0 && wait <= c.maxRateWait {
		d.Defer(now.Add(wait))
	}
}

// rateLimitWait is the largest wait the headers ask for: RateLimit-Reset and
// RateLimit-User-Reset (seconds) and Retry-After (seconds or an HTTP date).
func rateLimitWait(h http.Header, now time.Time) time.Duration {
	var wait time.Duration
	for _, name := range []string{"RateLimit-Reset", "RateLimit-User-Reset", "Retry-After"} {
		if d, ok := parseWait(h.Get(name), now); ok && d > wait {
			wait = d
		}
	}
	return wait
}

// parseWait reads a header value of seconds, or an HTTP date.
func parseWait(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || secs > 24*3600 {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func closeBody(resp *http.Response) {
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
}
