package localstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/connection/conntest"
	"github.com/kitefix/kitefix/shared/storage"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRecordsContract(t *testing.T) {
	conntest.RunRecords(t, func(t *testing.T) connection.Records { return openStore(t, t.TempDir()) })
}

func TestSecretsContract(t *testing.T) {
	conntest.RunSecrets(t, func(t *testing.T) connection.Secrets { return openStore(t, t.TempDir()) })
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "bkua_" + hex.EncodeToString(b)
}

func TestSecretsNotInClear(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	token := randomToken(t)
	webhookSecret := hex.EncodeToString([]byte(randomToken(t)))
	if err := s.PutSecret(ctx, "kitefix/local/buildkite-api-token", token); err != nil {
		t.Fatalf("PutSecret: %v", err)
	}
	rec := conntest.FullRecord("local")
	rec.Webhook.Secret = webhookSecret
	if err := s.PutConnection(ctx, rec); err != nil {
		t.Fatalf("PutConnection: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no files in the data directory")
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for what, secret := range map[string]string{"API token": token, "webhook secret": webhookSecret} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the %s in clear", e.Name(), what)
			}
		}
	}
}

func TestSealedValueTampered(t *testing.T) {
	ctx := context.Background()
	const name = "kitefix/local/buildkite-api-token"
	token := randomToken(t)

	tests := []struct {
		name   string
		modify func(t *testing.T, s *Store)
	}{
		{"flipped ciphertext bit", func(t *testing.T, s *Store) {
			update(t, s, func(b *bolt.Bucket) error {
				v := append([]byte(nil), b.Get([]byte(name))...)
				v[len(v)-1] ^= 0x01
				return b.Put([]byte(name), v)
			})
		}},
		{"flipped nonce bit", func(t *testing.T, s *Store) {
			update(t, s, func(b *bolt.Bucket) error {
				v := append([]byte(nil), b.Get([]byte(name))...)
				v[0] ^= 0x80
				return b.Put([]byte(name), v)
			})
		}},
		{"truncated", func(t *testing.T, s *Store) {
			update(t, s, func(b *bolt.Bucket) error {
				return b.Put([]byte(name), b.Get([]byte(name))[:nonceSize+3])
			})
		}},
		{"moved from another name", func(t *testing.T, s *Store) {
			if err := s.PutSecret(ctx, "kitefix/other/buildkite-api-token", randomToken(t)); err != nil {
				t.Fatal(err)
			}
			update(t, s, func(b *bolt.Bucket) error {
				v := append([]byte(nil), b.Get([]byte("kitefix/other/buildkite-api-token"))...)
				return b.Put([]byte(name), v)
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			if err := s.PutSecret(ctx, name, token); err != nil {
				t.Fatalf("PutSecret: %v", err)
			}
			tt.modify(t, s)
			got, err := s.GetSecret(ctx, name)
			if err == nil {
				t.Fatalf("GetSecret of a modified value: got no error")
			}
			if got != "" {
				t.Errorf("GetSecret of a modified value returned a value")
			}
			if errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetSecret of a modified value: got %v, want an error other than storage.ErrNotFound", err)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("GetSecret error holds the token")
			}
		})
	}
}

func update(t *testing.T, s *Store, fn func(b *bolt.Bucket) error) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketSecrets)) })
	if err != nil {
		t.Fatal(err)
	}
}

func TestSealWrongAAD(t *testing.T) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.seal("kitefix/a/buildkite-api-token", []byte("bkua_value"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.open("kitefix/b/buildkite-api-token", sealed); err == nil {
		t.Errorf("open under another name: got no error")
	}
	got, err := s.open("kitefix/a/buildkite-api-token", sealed)
	if err != nil {
		t.Fatalf("open under its own name: %v", err)
	}
	if string(got) != "bkua_value" {
		t.Errorf("open under its own name returned another value")
	}

	other, err := s.seal("kitefix/a/buildkite-api-token", []byte("bkua_value"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other[:nonceSize], sealed[:nonceSize]) {
		t.Errorf("two seals used the same nonce")
	}
}

func TestKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir)
	if err := s.PutSecret(context.Background(), "n", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string]fs.FileMode{dir: 0o700, filepath.Join(dir, KeyFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s: got %#o, want %#o", filepath.Base(path), got, want)
		}
	}
	key, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != keySize {
		t.Errorf("key file length: got %d, want %d", len(key), keySize)
	}

	// Reopening uses the same key: the secret still opens.
	s = openStore(t, dir)
	got, err := s.GetSecret(context.Background(), "n")
	if err != nil || got != "v" {
		t.Fatalf("GetSecret after reopen: got %q, %v; want \"v\", nil", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFileRefused(t *testing.T) {
	tests := []struct {
		name    string
		mode    fs.FileMode
		size    int
		wantErr string
	}{
		{"group readable", 0o640, keySize, "group and others must have no access"},
		{"world readable", 0o604, keySize, "group and others must have no access"},
		{"group writable", 0o620, keySize, "group and others must have no access"},
		{"short", 0o600, keySize - 1, "not 32 bytes long"},
		{"long", 0o600, keySize + 1, "not 32 bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFile)
			if err := os.WriteFile(path, make([]byte, tt.size), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open with a %s key file: got no error", tt.name)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open with a %s key file: got error %q, want it to contain %q", tt.name, err, tt.wantErr)
			}
			if _, err := os.Stat(filepath.Join(dir, DBFile)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open with a refused key file created the database (stat: %v)", err)
			}
		})
	}
}

func TestClosedStoreUnavailable(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"GetConnection": func() error { _, err := s.GetConnection(ctx, "local"); return err },
		"PutConnection": func() error { return s.PutConnection(ctx, conntest.FullRecord("local")) },
		"WebhookTenant": func() error { _, err := s.WebhookTenant(ctx, "id"); return err },
		"GetSecret":     func() error { _, err := s.GetSecret(ctx, "n"); return err },
		"PutSecret":     func() error { return s.PutSecret(ctx, "n", "v") },
		"DeleteSecret":  func() error { return s.DeleteSecret(ctx, "n") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s on a closed store: got error %v, want storage.ErrUnavailable", name, err)
		}
	}
}

func TestConsistency(t *testing.T) {
	conntest.RunConsistency(t, 5, func(t *testing.T) conntest.Stores {
		s := openStore(t, t.TempDir())
		return conntest.Stores{Records: s, Secrets: s, Routes: s.routesOf}
	})
}

// routesOf lists the webhook ids routed to tenant.
func (s *Store) routesOf(_ context.Context, tenant string) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoutes).ForEach(func(k, v []byte) error {
			if string(v) == tenant {
				ids = append(ids, string(k))
			}
			return nil
		})
	})
	return ids, err
}
