// Package secretstore keeps secret values (API tokens, webhook secrets) in
// AWS Secrets Manager.
//
// Error strings name the secret but never carry its value.
package secretstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/ctxtime"
	"github.com/kitefix/kitefix/shared/storage"
)

// API is the part of the Secrets Manager client the Store uses.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
}

// Store implements connection.Secrets on Secrets Manager.
type Store struct {
	client API
	// sleep pauses between retries; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ connection.Secrets = (*Store)(nil)

// New returns a Store that uses client.
func New(client API) *Store {
	return &Store{client: client, sleep: ctxtime.Sleep}
}

// Error codes of Secrets Manager. They are matched on ErrorCode() rather
// than on the SDK's typed errors, which kumo does not produce.
const (
	codeNotFound       = "ResourceNotFoundException"
	codeExists         = "ResourceExistsException"
	codeInvalidRequest = "InvalidRequestException"
)

// PutSecret creates or replaces the value of name: PutSecretValue, and
// CreateSecret when there is no such secret yet. When a concurrent writer
// creates it first, the value is put again.
//
// A secret scheduled for deletion is not restored. DeleteSecret here
// deletes at once, but Secrets Manager finishes a deletion in the
// background: a put right after a delete (a connect after a disconnect)
// finds the name still scheduled for deletion, so PutSecret retries with
// back-off, as Secrets Manager advises, for a few seconds. A name still
// scheduled for deletion after that (deleted by someone else with a
// recovery window) returns storage.ErrUnavailable.
func (s *Store) PutSecret(ctx context.Context, name, value string) error {
	pause := deletionPauseMin
	var err error
	for attempt := 0; ; attempt++ {
		err = s.put(ctx, name, value)
		if !scheduledForDeletion(err) || attempt == deletionRetries {
			break
		}
		if serr := s.sleep(ctx, pause); serr != nil {
			break
		}
		pause = min(2*pause, deletionPauseMax)
	}
	if err != nil {
		// Never storage.ErrNotFound: a put has nothing to find.
		return fmt.Errorf("put secret %s: %w: %w", name, storage.ErrUnavailable, err)
	}
	return nil
}

// Back-off while a deleted name is still scheduled for deletion: Secrets
// Manager usually finishes a forced deletion within a second or two; the
// retries wait about 5 s in all, well inside a request's time.
const (
	deletionRetries  = 8
	deletionPauseMin = 100 * time.Millisecond
	deletionPauseMax = time.Second
)

func (s *Store) put(ctx context.Context, name, value string) error {
	err := s.putValue(ctx, name, value)
	if hasCode(err, codeNotFound) {
		_, err = s.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name:         aws.String(name),
			SecretString: aws.String(value),
		})
		if hasCode(err, codeExists) {
			err = s.putValue(ctx, name, value)
		}
	}
	return err
}

// scheduledForDeletion reports whether err says the secret is scheduled
// for deletion (an InvalidRequestException about deletion).
func scheduledForDeletion(err error) bool {
	return hasCode(err, codeInvalidRequest) && isGone(err)
}

func (s *Store) putValue(ctx context.Context, name, value string) error {
	_, err := s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String(name),
		SecretString: aws.String(value),
	})
	return err
}

// GetSecret returns the current value of name, or storage.ErrNotFound when
// there is no such secret or it is scheduled for deletion.
func (s *Store) GetSecret(ctx context.Context, name string) (string, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name),
	})
	if err != nil {
		return "", wrap("get secret", name, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("get secret %s: no string value: %w", name, storage.ErrNotFound)
	}
	return *out.SecretString, nil
}

// DeleteSecret deletes name at once, without a recovery window. A missing
// secret is not an error.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	_, err := s.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId:                   aws.String(name),
		ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	if err != nil && isGone(err) {
		return nil
	}
	return wrap("delete secret", name, err)
}

// wrap maps a Secrets Manager error to the storage errors. It keeps the
// service's message, which names the secret but never holds its value.
func wrap(op, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case isGone(err):
		return fmt.Errorf("%s %s: %w", op, name, storage.ErrNotFound)
	default:
		return fmt.Errorf("%s %s: %w: %w", op, name, storage.ErrUnavailable, err)
	}
}

// isGone reports whether err says the secret does not exist or is
// scheduled for deletion (InvalidRequestException with a message about
// deletion, from real Secrets Manager and kumo alike).
func isGone(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case codeNotFound:
		return true
	case codeInvalidRequest:
		return strings.Contains(strings.ToLower(apiErr.ErrorMessage()), "deletion")
	}
	return false
}

func hasCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}
