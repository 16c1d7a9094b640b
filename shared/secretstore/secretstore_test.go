package secretstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/storage"
)

// fakeAPI answers each call with the next scripted error for its
// operation (nil: success) and records the calls.
type fakeAPI struct {
	errs  map[string][]error
	calls []string
	value string
}

func (f *fakeAPI) next(op string) error {
	f.calls = append(f.calls, op)
	errs := f.errs[op]
	if len(errs) == 0 {
		return nil
	}
	f.errs[op] = errs[1:]
	return errs[0]
}

func (f *fakeAPI) GetSecretValue(_ context.Context, _ *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if err := f.next("Get"); err != nil {
		return nil, err
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(f.value)}, nil
}

func (f *fakeAPI) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	if err := f.next("Put"); err != nil {
		return nil, err
	}
	f.value = aws.ToString(in.SecretString)
	return &secretsmanager.PutSecretValueOutput{}, nil
}

func (f *fakeAPI) CreateSecret(_ context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	if err := f.next("Create"); err != nil {
		return nil, err
	}
	f.value = aws.ToString(in.SecretString)
	return &secretsmanager.CreateSecretOutput{}, nil
}

func (f *fakeAPI) DeleteSecret(_ context.Context, in *secretsmanager.DeleteSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	if !aws.ToBool(in.ForceDeleteWithoutRecovery) {
		return nil, errors.New("delete without ForceDeleteWithoutRecovery")
	}
	return &secretsmanager.DeleteSecretOutput{}, f.next("Delete")
}

func apiErr(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

var (
	errNotFound  = apiErr("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	errExists    = apiErr("ResourceExistsException", "the secret already exists")
	errScheduled = apiErr("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	errThrottled = apiErr("ThrottlingException", "Rate exceeded")
)

func TestPutSecret(t *testing.T) {
	const value = "bkua_0123456789abcdef"
	tests := []struct {
		name      string
		errs      map[string][]error
		wantCalls []string
		wantErr   error
	}{
		{"existing secret", nil, []string{"Put"}, nil},
		{"new secret", map[string][]error{"Put": {errNotFound}}, []string{"Put", "Create"}, nil},
		{"created by another writer meanwhile", map[string][]error{"Put": {errNotFound}, "Create": {errExists}}, []string{"Put", "Create", "Put"}, nil},
		{"deletion finishing", map[string][]error{"Put": {errScheduled, errScheduled, errNotFound}}, []string{"Put", "Put", "Put", "Create"}, nil},
		{"deletion finishing between put and create", map[string][]error{"Put": {errNotFound}, "Create": {errScheduled}}, []string{"Put", "Create", "Put"}, nil},
		{"scheduled for deletion throughout", map[string][]error{"Put": slices.Repeat([]error{errScheduled}, deletionRetries+1)},
			slices.Repeat([]string{"Put"}, deletionRetries+1), storage.ErrUnavailable},
		{"throttled", map[string][]error{"Put": {errThrottled}}, []string{"Put"}, storage.ErrUnavailable},
		{"create throttled", map[string][]error{"Put": {errNotFound}, "Create": {errThrottled}}, []string{"Put", "Create"}, storage.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{errs: tt.errs}
			if f.errs == nil {
				f.errs = map[string][]error{}
			}
			s := New(f)
			var slept time.Duration
			s.sleep = func(_ context.Context, d time.Duration) error { slept += d; return nil }
			err := s.PutSecret(context.Background(), "kitefix/t/buildkite-api-token", value)
			if slept > 6*time.Second {
				t.Errorf("PutSecret waited %s in all, want at most 6s", slept)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("PutSecret: got error %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, storage.ErrNotFound) {
				t.Errorf("PutSecret error wraps storage.ErrNotFound: %v", err)
			}
			if err != nil && strings.Contains(err.Error(), value) {
				t.Errorf("PutSecret error holds the value")
			}
			if diff := cmp.Diff(tt.wantCalls, f.calls); diff != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGetAndDeleteErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantGet    error
		wantDelete error
	}{
		{"found", nil, nil, nil},
		{"not found", errNotFound, storage.ErrNotFound, nil},
		{"scheduled for deletion", errScheduled, storage.ErrNotFound, nil},
		{"other invalid request", apiErr("InvalidRequestException", "something else"), storage.ErrUnavailable, storage.ErrUnavailable},
		{"throttled", errThrottled, storage.ErrUnavailable, storage.ErrUnavailable},
		{"transport", errors.New("dial tcp: connection refused"), storage.ErrUnavailable, storage.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{errs: map[string][]error{"Get": {tt.err}, "Delete": {tt.err}}, value: "v"}
			s := New(f)
			_, err := s.GetSecret(context.Background(), "n")
			if !errors.Is(err, tt.wantGet) || (tt.wantGet == nil && err != nil) {
				t.Errorf("GetSecret: got error %v, want %v", err, tt.wantGet)
			}
			err = s.DeleteSecret(context.Background(), "n")
			if !errors.Is(err, tt.wantDelete) || (tt.wantDelete == nil && err != nil) {
				t.Errorf("DeleteSecret: got error %v, want %v", err, tt.wantDelete)
			}
		})
	}
}
