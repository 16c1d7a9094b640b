// Package buildkite is the Buildkite REST API client shared by the connect,
// webhook and analyze functions and by the reconcile pass.
//
// It is a thin client over net/http rather than github.com/buildkite/go-buildkite/v4.
// go-buildkite/v4 was considered: it covers far more of the API than we use,
// but it reads job logs whole into memory (we stream logs that may reach
// 1 GiB), it has no retry policy that honours RateLimit-Reset and
// RateLimit-User-Reset on 429 or retries 5xx with backoff, and its errors are
// not typed by kind, so callers could not tell a revoked token from an
// outage with errors.Is. The few endpoints we need are small enough to own.
//
// Every call:
//   - sends Authorization: Bearer <token>, Accept: application/json and
//     User-Agent: kitefix;
//   - runs under a per-call deadline (WithTimeout, default 10s) that covers
//     its retries and waits, within the caller's context;
//   - waits for a slot in a client-side limiter shared by every Client of
//     the same token in the process (50 requests a minute by default);
//   - retries 429 after the wait Buildkite asks for, and 5xx, network errors
//     and timeouts with full-jitter exponential backoff, where the request
//     is safe to repeat (see "Retries" below);
//   - reads at most 10 MiB of a JSON response.
//
// # Retries
//
// GET requests are retried on 429, 5xx and network errors. PUT .../retry is
// retried the same way: Buildkite retries a job id at most once, so a
// repeated request cannot start a second retry (it fails instead, and the
// caller re-reads the build). POST .../annotations with Append false is an
// upsert keyed by the annotation's context, so repeating it leaves the same
// annotation: it is retried like a GET. With Append true a repeat could add
// the body twice, so it is retried only on 429, which Buildkite sends before
// doing any work.
//
// A 429 waits for the largest of RateLimit-Reset, RateLimit-User-Reset and
// Retry-After. When that wait is longer than the cap (WithMaxRateLimitWait,
// default 30s) or would pass the deadline, the call fails at once with an
// *APIError that is ErrRateLimited and carries RetryAfter.
//
// # Errors
//
// Errors from Buildkite are *APIError; errors.Is matches them against
// ErrUnauthorized, ErrForbidden, ErrNotFound, ErrRateLimited and
// ErrUnavailable. Network errors and timeouts are ErrUnavailable. A caller's
// own cancellation comes back as its context error. The token is never part
// of an error string or a log line.
package buildkite
