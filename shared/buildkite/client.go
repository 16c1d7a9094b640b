package buildkite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultBaseURL          = "https://api.buildkite.com"
	DefaultTimeout          = 10 * time.Second
	DefaultMaxRetries       = 3
	DefaultBackoffBase      = 250 * time.Millisecond
	DefaultBackoffMax       = 5 * time.Second
	DefaultMaxRateLimitWait = 30 * time.Second
	DefaultLogIdleTimeout   = 60 * time.Second

	maxJSONBody  = 10 << 20 // a JSON answer larger than this is refused
	maxErrorBody = 64 << 10 // how much of an error answer we read
	maxMessage   = 512      // how much of Buildkite's message we keep
	userAgent    = "kitefix"
)

// Client calls the Buildkite REST API with one token. It is safe for
// concurrent use; make one with New.
type Client struct {
	token       string
	base        *url.URL
	baseErr     error
	hc          *http.Client
	timeout     time.Duration
	idleTimeout time.Duration
	maxRetries  int
	backoffBase time.Duration
	backoffMax  time.Duration
	maxRateWait time.Duration
	log         *slog.Logger
	clock       Clock
	limiter     Limiter
	limiterSet  bool
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the API root (default https://api.buildkite.com). Callers
// read BUILDKITE_API_URL and pass it here.
func WithBaseURL(raw string) Option {
	return func(c *Client) { c.base, c.baseErr = parseBaseURL(raw) }
}

// WithHTTPClient sets the HTTP client (default: a new one on
// http.DefaultTransport). Its own Timeout, if set, also applies; its
// CheckRedirect does not: the Client never follows a redirect.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout sets the deadline of each call, retries and waits included
// (default 10s). For JobLog it covers getting the response headers; the body
// is governed by the context and WithLogIdleTimeout. Paginated calls apply
// it to each page.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithLogIdleTimeout sets how long a job log body may go without a byte
// before the stream fails (default 60s; 0 or less: no idle limit).
func WithLogIdleTimeout(d time.Duration) Option {
	return func(c *Client) { c.idleTimeout = d }
}

// WithMaxRetries sets how many times a request is repeated after the first
// try (default 3; 0: never).
func WithMaxRetries(n int) Option {
	return func(c *Client) {
		if n >= 0 {
			c.maxRetries = n
		}
	}
}

// WithBackoff sets the base and the cap of the full-jitter exponential
// backoff between retries (defaults 250ms and 5s).
func WithBackoff(base, maxWait time.Duration) Option {
	return func(c *Client) {
		if base > 0 {
			c.backoffBase = base
		}
		if maxWait > 0 {
			c.backoffMax = maxWait
		}
	}
}

// WithMaxRateLimitWait sets the longest wait a 429 may ask for before the
// call gives up with ErrRateLimited (default 30s).
func WithMaxRateLimitWait(d time.Duration) Option {
	return func(c *Client) {
		if d >= 0 {
			c.maxRateWait = d
		}
	}
}

// WithLogger sets the logger for retries and waits (default: discard). The
// token never appears in what is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// WithClock replaces the clock used for backoff and rate-limit waits; tests
// use it so that nothing really sleeps.
func WithClock(clk Clock) Option {
	return func(c *Client) {
		if clk != nil {
			c.clock = clk
		}
	}
}

// WithLimiter replaces the client-side limiter (default: SharedLimiter of
// the token). nil turns client-side limiting off.
func WithLimiter(l Limiter) Option {
	return func(c *Client) { c.limiter, c.limiterSet = l, true }
}

// New returns a Client that authenticates with token.
func New(token string, opts ...Option) *Client {
	c := &Client{
		token:       token,
		hc:          &http.Client{},
		timeout:     DefaultTimeout,
		idleTimeout: DefaultLogIdleTimeout,
		maxRetries:  DefaultMaxRetries,
		backoffBase: DefaultBackoffBase,
		backoffMax:  DefaultBackoffMax,
		maxRateWait: DefaultMaxRateLimitWait,
		log:         slog.New(slog.DiscardHandler),
		clock:       realClock{},
	}
	c.base, c.baseErr = parseBaseURL(DefaultBaseURL)
	for _, o := range opts {
		o(c)
	}
	if !c.limiterSet {
		c.limiter = SharedLimiter(token)
	}
	hc := *c.hc // a copy: the caller's client keeps its own redirect policy
	hc.CheckRedirect = refuseRedirect
	c.hc = &hc
	return c
}

// refuseRedirect makes the HTTP client hand back a redirect answer instead
// of following it. Buildkite's REST API answers in place; a redirect comes
// from something else (a proxy, a misconfigured base URL, an attacker), and
// following it would send the token, or trust the answer, of another host.
// The 3xx answer then fails the call as an APIError naming its status.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(raw), "/"))
	if err != nil {
		return nil, fmt.Errorf("buildkite: bad base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("buildkite: bad base URL %q: want http(s)://host", u.Redacted())
	}
	return u, nil
}

// retryPolicy says on which failures a request may be sent again.
type retryPolicy int

const (
	retryAll           retryPolicy = iota // 429, 5xx, network errors, timeouts
	retryRateLimitOnly                    // 429 only: repeating may double an effect
)

// request is one API request, sent once or more.
type request struct {
	method   string
	url      *url.URL
	body     []byte // JSON; nil for none
	accept   string
	policy   retryPolicy
	deadline time.Time // the call's deadline, when ctx does not carry it
}

// path is the request's path, for errors and logs.
func (r *request) path() string { return r.url.EscapedPath() }

// endpoint builds the URL of an API path such as "/v2/access-token". The
// path's variable segments must already be escaped (see seg).
func (c *Client) endpoint(path string, query url.Values) (*url.URL, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	u := *c.base
	u.RawPath = ""
	u.Path, u.RawPath = joinPath(c.base.Path, path)
	u.RawQuery = query.Encode()
	return &u, nil
}

// joinPath joins the base path and an escaped API path, giving Path and
// RawPath as url.URL wants them.
func joinPath(basePath, escaped string) (string, string) {
	raw := strings.TrimRight(basePath, "/") + escaped
	p, err := url.PathUnescape(raw)
	if err != nil {
		return raw, ""
	}
	if p == raw {
		return p, ""
	}
	return p, raw
}

// seg escapes one path segment (an org slug, a job id).
func seg(s string) string { return url.PathEscape(s) }

func (c *Client) newRequest(method, path string, query url.Values) (*request, error) {
	u, err := c.endpoint(path, query)
	if err != nil {
		return nil, err
	}
	return &request{method: method, url: u, accept: "application/json", policy: retryAll}, nil
}

// httpRequest makes the net/http request for one attempt.
func (c *Client) httpRequest(ctx context.Context, r *request) (*http.Request, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), body)
	if err != nil {
		return nil, fmt.Errorf("buildkite: %s %s: build request: %s", r.method, r.path(), c.redact(err.Error()))
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", r.accept)
	req.Header.Set("User-Agent", userAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// callTimeout is the cause of a call context that ran out of time.
type callTimeout struct{ what string }

func (e *callTimeout) Error() string        { return e.what }
func (e *callTimeout) Is(target error) bool { return target == context.DeadlineExceeded }

var (
	errCallTimeout = &callTimeout{"no answer before the call's deadline"}
	errIdleTimeout = &callTimeout{"no data before the log's idle deadline"}
)

// callContext bounds one call by the client's timeout.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
}

// doJSON sends r under the call deadline and decodes a 2xx answer into out
// (out may be nil). It returns the response headers.
func (c *Client) doJSON(ctx context.Context, r *request, out any) (http.Header, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJSONBody))
		return resp.Header, nil
	}
	if err := decodeJSON(resp.Body, out); err != nil {
		if ctx.Err() != nil {
			return nil, c.doneError(ctx, r, nil)
		}
		return nil, fmt.Errorf("buildkite: %s %s: %w", r.method, r.path(), err)
	}
	return resp.Header, nil
}

// doneError is the error of a call whose context is done: ErrUnavailable
// when the client's own deadline passed (or last, if it says more), else
// the caller's context error.
func (c *Client) doneError(ctx context.Context, r *request, last error) error {
	cause := context.Cause(ctx)
	var t *callTimeout
	if errors.As(cause, &t) {
		if last != nil {
			return last
		}
		return c.unavailable(r, cause)
	}
	return fmt.Errorf("buildkite: %s %s: %w", r.method, r.path(), ctx.Err())
}

// unavailable is the error of a request that got no answer.
func (c *Client) unavailable(r *request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the URL: the path is said once, below
	}
	msg := fmt.Sprintf("buildkite: %s %s: unavailable: %s", r.method, r.path(), c.redact(err.Error()))
	return &unavailableError{msg: msg, cause: err}
}

// redact removes the token from s.
func (c *Client) redact(s string) string {
	if len(c.token) < 4 {
		return s // too short to matter, and replacing would mangle s
	}
	return strings.ReplaceAll(s, c.token, "[REDACTED]")
}
