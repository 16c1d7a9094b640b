// Package storage holds the errors every storage adapter reports (DynamoDB,
// Secrets Manager and the local embedded store), so callers can branch on
// them with errors.Is without importing an adapter.
package storage

import "errors"

var (
	// ErrNotFound: the item or secret does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write lost to a concurrent writer, or the
	// item already exists where it must not.
	ErrConflict = errors.New("conflicting write")
	// ErrUnavailable: the store could not be reached or refused the call.
	// Adapters wrap transport and service failures with it.
	ErrUnavailable = errors.New("storage unavailable")
)
