package buildkite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kinds of failure, for errors.Is.
var (
	// ErrUnauthorized: Buildkite answered 401 (the token is wrong, revoked or expired).
	ErrUnauthorized = errors.New("buildkite: unauthorized")
	// ErrForbidden: Buildkite answered 403 (a missing scope, or an IP allow-list).
	ErrForbidden = errors.New("buildkite: forbidden")
	// ErrNotFound: Buildkite answered 404.
	ErrNotFound = errors.New("buildkite: not found")
	// ErrRateLimited: Buildkite answered 429 and the retries ran out, or the
	// wait it asked for was too long.
	ErrRateLimited = errors.New("buildkite: rate limited")
	// ErrUnavailable: Buildkite answered 5xx until the retries ran out, or
	// could not be reached, or did not answer before the deadline.
	ErrUnavailable = errors.New("buildkite: unavailable")
)

// APIError is an error answer from Buildkite.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is Buildkite's "message" field (or the status text), with the
	// token removed should the server echo it.
	Message string
	// RetryAfter is how long Buildkite asked us to wait (429), if it said.
	RetryAfter time.Duration
	// Method and Path are the request's, without the host or query.
	Method, Path string
}

// Error names the status and Buildkite's message, never the token.
func (e *APIError) Error() string {
	s := fmt.Sprintf("buildkite: %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Is reports whether target is the kind of this error.
func (e *APIError) Is(target error) bool {
	k := kindOf(e.StatusCode)
	return k != nil && target == k
}

func kindOf(status int) error {
	switch {
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500:
		return ErrUnavailable
	}
	return nil
}

// unavailableError is a request that got no answer: a network error or a
// timeout. Its message is made once, with the token redacted.
type unavailableError struct {
	msg   string
	cause error
}

func (e *unavailableError) Error() string   { return e.msg }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// IsRetryable reports whether err is worth trying again later: Buildkite was
// unavailable or rate limited. A caller's own cancellation is not.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRateLimited)
}
