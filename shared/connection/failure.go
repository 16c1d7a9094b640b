package connection

import (
	"errors"
	"fmt"
	"time"
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

func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("%s: %s: %v", f.Code, f.Message, f.Err)
	}
	return fmt.Sprintf("%s: %s", f.Code, f.Message)
}

func (f *Failure) Unwrap() error { return f.Err }

// apiError is the failure as the status record shows it.
func (f *Failure) apiError() *Error { return &Error{Code: f.Code, Message: f.Message} }

// AsFailure returns err's Failure, or a storage_unavailable Failure wrapping
// err when it is some other error.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
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
