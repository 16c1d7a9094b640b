package connection

import (
	"errors"
	"fmt"
	"time"

	"github.com/kitefix/kitefix/shared/storage"
)

// Failure is an error a person can act on: it carries the settings API code
// and a message that says what to do. Err, the underlying cause, is for logs
// and errors.Is; it is never shown to the user.
type Failure struct {
	Code          Code
	Message       string
	MissingScopes []string
	// RetryAfter is how long Buildkite asked us to wait (rate limits).
	RetryAfter time.Duration
	Err        error
}

// Error is the code and the message a person can act on.
func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("%s: %s: %v", f.Code, f.Message, f.Err)
	}
	return fmt.Sprintf("%s: %s", f.Code, f.Message)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (f *Failure) Unwrap() error { return f.Err }

// apiError is the failure as the status record shows it.
func (f *Failure) apiError() *Error { return &Error{Code: f.Code, Message: f.Message} }

// AsFailure returns err's Failure; a conflict Failure when err is a lost
// race (storage.ErrConflict); otherwise a storage_unavailable Failure
// wrapping err.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, storage.ErrConflict) {
		return conflict(err)
	}
	return &Failure{
		Code:    CodeStorageUnavailable,
		Message: "Storage is unavailable right now; nothing was changed. Try again in a minute.",
		Err:     err,
	}
}

func fail(code Code, msg string, err error) *Failure {
	return &Failure{Code: code, Message: msg, Err: err}
}

// conflict is a change another request made first. Nothing was changed by
// this one.
func conflict(err error) *Failure {
	return fail(CodeConflict, "Another change to this Buildkite connection happened at the same time and won; nothing was changed by this request. Reload the status and try again.", err)
}

// busy is a change that could not start because another one held the
// tenant's lease for too long.
func busy(err error) *Failure {
	return fail(CodeConflict, "Another change to this Buildkite connection is in progress; nothing was changed by this request. Try again in a few seconds.", err)
}

// unfinished is a storage failure part-way through a change that could not
// be undone: unlike AsFailure's, its message does not claim that nothing
// changed.
func unfinished(what string, err error) *Failure {
	return fail(CodeStorageUnavailable, fmt.Sprintf(
		"Storage failed part-way through: the %s did not finish and may be incomplete. Try again in a minute.", what), err)
}
