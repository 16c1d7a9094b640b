package integration

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/sivchari/kumo"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/connection/conntest"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/secretstore"
	"github.com/kitefix/kitefix/shared/storage"
)

// TestSecretsContract runs the same behaviours against the Secrets Manager
// store (on kumo) and the local store.
func TestSecretsContract(t *testing.T) {
	t.Run("secretsmanager", func(t *testing.T) {
		env := startKumo(t)
		conntest.RunSecrets(t, func(t *testing.T) connection.Secrets {
			return secretstore.New(env.Secrets)
		})
	})
	t.Run("local", func(t *testing.T) {
		conntest.RunSecrets(t, func(t *testing.T) connection.Secrets {
			s, err := localstore.Open(t.TempDir())
			if err != nil {
				t.Fatalf("open local store: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

// TestSecretsConcurrentCreate: writers racing to create the same secret all
// succeed (the loser of CreateSecret puts its value instead), and the
// secret ends with one of their values.
func TestSecretsConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	env := startKumo(t)
	store := secretstore.New(env.Secrets)
	name := uniqueName("kitefix/race") + "/webhook-secret"

	values := []string{uniqueName("v1"), uniqueName("v2"), uniqueName("v3"), uniqueName("v4")}
	errs := make([]error, len(values))
	var wg sync.WaitGroup
	for i, v := range values {
		wg.Go(func() { errs[i] = store.PutSecret(ctx, name, v) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: PutSecret: %v", i, err)
		}
	}
	got, err := store.GetSecret(ctx, name)
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	found := false
	for _, v := range values {
		found = found || got == v
	}
	if !found {
		t.Errorf("GetSecret after the race returned none of the values put")
	}
}

// TestSecretScheduledForDeletion: a secret deleted with a recovery window
// (by someone else) reads as not found and cannot be written, and
// DeleteSecret removes it at once so the name can be used again.
func TestSecretScheduledForDeletion(t *testing.T) {
	ctx := context.Background()
	env := startKumo(t)
	store := secretstore.New(env.Secrets)
	name := uniqueName("kitefix/scheduled") + "/buildkite-api-token"

	if err := store.PutSecret(ctx, name, uniqueName("bkua")); err != nil {
		t.Fatalf("PutSecret: %v", err)
	}
	_, err := env.Secrets.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId:             aws.String(name),
		RecoveryWindowInDays: aws.Int64(7),
	})
	if err != nil {
		t.Fatalf("schedule deletion: %v", err)
	}
	if _, err := store.GetSecret(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSecret of a secret scheduled for deletion: got error %v, want storage.ErrNotFound", err)
	}
	// Not restored: the name is unusable until the deletion completes.
	err = store.PutSecret(ctx, name, "bkua_new")
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("PutSecret of a secret scheduled for deletion: got error %v, want storage.ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "bkua_new") {
		t.Errorf("PutSecret error holds the value")
	}
	// Deleting it at once frees the name.
	if err := store.DeleteSecret(ctx, name); err != nil {
		t.Fatalf("DeleteSecret of a secret scheduled for deletion: %v", err)
	}
	if err := store.PutSecret(ctx, name, "bkua_new"); err != nil {
		t.Fatalf("PutSecret after DeleteSecret: %v", err)
	}
	got, err := store.GetSecret(ctx, name)
	if err != nil || got != "bkua_new" {
		t.Errorf("GetSecret after recreate: got error %v or another value", err)
	}
}

// TestSecretsUnreachable: with the endpoint gone, every call fails at once
// with storage.ErrUnavailable, and no error holds the value.
func TestSecretsUnreachable(t *testing.T) {
	srv := kumo.NewServer()
	url := srv.URL
	srv.Close()

	client := newKumoSecrets(kumoConfig(t), url, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
	store := secretstore.New(client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const value = "bkua_0123456789abcdef"

	calls := map[string]func() error{
		"PutSecret":    func() error { return store.PutSecret(ctx, "kitefix/t/buildkite-api-token", value) },
		"GetSecret":    func() error { _, err := store.GetSecret(ctx, "kitefix/t/buildkite-api-token"); return err },
		"DeleteSecret": func() error { return store.DeleteSecret(ctx, "kitefix/t/buildkite-api-token") },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s against a closed endpoint: got error %v, want storage.ErrUnavailable", name, err)
		}
		if err != nil && strings.Contains(err.Error(), value) {
			t.Errorf("%s error holds the secret value", name)
		}
	}
}
