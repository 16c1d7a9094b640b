package localstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/connection/conntest"
	"github.com/kitefix/kitefix/shared/storage"
)

// seeded makes a data directory holding a connection, its route and
// sealed secrets over several pages, and returns it closed.
func seeded(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.PutConnection(ctx, conntest.FullRecord("local")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutWebhookRoute(ctx, "3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b", "local"); err != nil {
		t.Fatal(err)
	}
	for i := range 40 { // enough to spread over several pages
		if err := s.PutSecret(ctx, fmt.Sprintf("kitefix/t%02d/buildkite-api-token", i), strings.Repeat("v", 900)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pages is the database's page size and high water mark.
func pages(t *testing.T, path string) (pageSize, hwm int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, ok := readMeta(f, 0)
	if m1, ok1 := readMeta(f, int64(m.pageSize)); ok1 && m1.txid > m.txid {
		m = m1
	}
	if !ok || m.pgid < 6 {
		t.Fatalf("seeded database: meta ok %v, %d pages; want a sound one of several pages", ok, m.pgid)
	}
	return int64(m.pageSize), int64(m.pgid)
}

// TestOpenRefusesDamagedData: each damage is refused with an error that
// names the file, says what is wrong and what to do, and changes nothing.
func TestOpenRefusesDamagedData(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(t *testing.T, dir string)
		file     string // the file the error names
		wantText string
	}{
		{
			name:     "key file deleted, sealed secrets remain",
			damage:   func(t *testing.T, dir string) { remove(t, filepath.Join(dir, KeyFile)) },
			file:     KeyFile,
			wantText: "holds 40 secrets sealed with it",
		},
		{
			name:     "database emptied",
			damage:   func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, DBFile), 0) },
			file:     DBFile,
			wantText: "is empty (0 bytes)",
		},
		{
			name:     "database deleted, key file remains",
			damage:   func(t *testing.T, dir string) { remove(t, filepath.Join(dir, DBFile)) },
			file:     DBFile,
			wantText: "is missing, but its key file",
		},
		{
			name: "database cut by one page",
			damage: func(t *testing.T, dir string) {
				path := filepath.Join(dir, DBFile)
				ps, hwm := pages(t, path)
				truncate(t, path, (hwm-1)*ps)
			},
			file:     DBFile,
			wantText: "is cut short",
		},
		{
			name: "database cut mid-page",
			damage: func(t *testing.T, dir string) {
				path := filepath.Join(dir, DBFile)
				ps, _ := pages(t, path)
				truncate(t, path, 3*ps+ps/2)
			},
			file:     DBFile,
			wantText: "is cut short",
		},
		{
			name: "database cut inside the header pages",
			damage: func(t *testing.T, dir string) {
				path := filepath.Join(dir, DBFile)
				ps, _ := pages(t, path)
				truncate(t, path, ps+ps/2)
			},
			file:     DBFile,
			wantText: DBFile,
		},
		{
			name: "both header pages garbled",
			damage: func(t *testing.T, dir string) {
				path := filepath.Join(dir, DBFile)
				ps, _ := pages(t, path)
				garble(t, path, 0, 2*ps, 1)
			},
			file:     DBFile,
			wantText: "is not a kitefix database, or both its header pages are garbled",
		},
		{
			name: "not a database at all",
			damage: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, DBFile), []byte(strings.Repeat("not a database\n", 2000)))
			},
			file:     DBFile,
			wantText: "is not a kitefix database",
		},
		{
			name: "data pages garbled",
			damage: func(t *testing.T, dir string) {
				path := filepath.Join(dir, DBFile)
				ps, hwm := pages(t, path)
				garble(t, path, 2*ps, (hwm-2)*ps, 2)
			},
			file:     DBFile,
			wantText: "is garbled",
		},
		{
			name: "key file replaced by another key",
			damage: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, KeyFile), []byte(strings.Repeat("k", 32)))
			},
			file:     KeyFile,
			wantText: "does not open any of the 40 secrets",
		},
		{
			name: "one sealed secret garbled",
			damage: func(t *testing.T, dir string) {
				editValue(t, dir, bucketSecrets, "kitefix/t07/buildkite-api-token", func(v []byte) []byte {
					v[len(v)/2] ^= 0x40
					return v
				})
			},
			file:     DBFile,
			wantText: `holds 1 of 40 sealed secrets that do not open`,
		},
		{
			name: "connection record garbled",
			damage: func(t *testing.T, dir string) {
				editValue(t, dir, bucketConnections, "local", func(v []byte) []byte { return v[:len(v)/2] })
			},
			file:     DBFile,
			wantText: `holds a connection record of tenant "local" that does not read back`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := seeded(t)
			tt.damage(t, dir)
			before := listing(t, dir)
			s, err := Open(dir)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open of damaged data: no error")
			}
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("error %v is not ErrDamaged", err)
			}
			msg := err.Error()
			for _, want := range []string{filepath.Join(dir, tt.file), tt.wantText, "restore it"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if after := listing(t, dir); after != before {
				t.Errorf("a refused Open changed the directory:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestOpenDamagedNeverPanics garbles the database in many small ways: Open
// and the reads after it return errors, never crash.
func TestOpenDamagedNeverPanics(t *testing.T) {
	dir := seeded(t)
	path := filepath.Join(dir, DBFile)
	ps, hwm := pages(t, path)
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	const runs = 300
	for seed := range uint64(runs) {
		rng := rand.New(rand.NewPCG(seed, 7))
		b := append([]byte(nil), pristine...)
		// A few bytes of one data page: headers, counts, offsets, ids.
		page := 2 + rng.Int64N(hwm-2)
		for range 1 + rng.IntN(8) {
			off := page*ps + rng.Int64N(64)
			if rng.IntN(2) == 0 {
				off = page*ps + rng.Int64N(ps)
			}
			b[off] = byte(rng.Uint32())
		}
		write(t, path, b)
		s, err := Open(dir)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("seed %d: error %v is not ErrDamaged", seed, err)
			}
			refused++
			continue
		}
		// Opened (the garbled bytes were unused, or were inside a key or
		// value, which only the record's own checks can catch): reads
		// answer, whatever they say.
		ctx := context.Background()
		_, _ = s.GetConnection(ctx, "local")
		_, _ = s.WebhookTenant(ctx, "3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b")
		for i := range 40 {
			_, _ = s.GetSecret(ctx, fmt.Sprintf("kitefix/t%02d/buildkite-api-token", i))
		}
		if err := s.PutSecret(ctx, "kitefix/after/buildkite-api-token", "v"); err != nil && !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("seed %d: PutSecret: %v", seed, err)
		}
		_ = s.Close()
	}
	if refused == 0 {
		t.Errorf("none of %d garbled databases was refused", runs)
	}
	t.Logf("%d of %d garbled databases refused", refused, runs)
}

// TestOpenKeyFileRules: a fresh directory gets both files; a lost key
// file with nothing sealed is replaced (nothing depended on it).
func TestOpenKeyFileRules(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	s := openStore(t, dir)
	if err := s.PutConnection(context.Background(), conntest.FullRecord("local")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	remove(t, filepath.Join(dir, KeyFile))
	s = openStore(t, dir)
	if _, err := s.GetConnection(context.Background(), "local"); err != nil {
		t.Errorf("record after a new key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil {
		t.Errorf("no new key file: %v", err)
	}
}

// TestDamagedRecord: a stored record that does not decode, or decodes to
// something no write stores, is an error, never "no record".
func TestDamagedRecord(t *testing.T) {
	good := conntest.FullRecord("local")
	tests := []struct {
		name  string
		value string
	}{
		{"empty", ``},
		{"not JSON", `\x00\x01garbage`},
		{"cut short", `{"record":{"state":"connected"`},
		{"wrong types", `{"record":{"state":7},"tenant":"local","version":3}`},
		{"another tenant", `{"record":{"state":"connected"},"tenant":"other","version":3}`},
		{"no version", `{"record":{"state":"connected"},"tenant":"local"}`},
		{"unknown state", `{"record":{"state":"conected"},"tenant":"local","version":3}`},
		{"webhook without id", `{"record":{"state":"connected","webhook":{"url":"https://x/hooks/1"}},"tenant":"local","version":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			ctx := context.Background()
			if err := s.PutConnection(ctx, good); err != nil {
				t.Fatal(err)
			}
			putRaw(t, s, bucketConnections, "local", tt.value)
			_, err := s.GetConnection(ctx, "local")
			if !errors.Is(err, ErrDamaged) || !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetConnection of a %s record: %v; want ErrDamaged and storage.ErrUnavailable", tt.name, err)
			}
		})
	}
}

// TestDamagedRecordConnectChangesNothing: a connect over a damaged record
// fails, and the stored token is still the old one.
func TestDamagedRecordConnectChangesNothing(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	const oldToken = "bkua_old0123456789abcdef0123456789abcdef0123"
	tokenName := connection.TokenSecretName("kitefix/", "local")
	if err := s.PutSecret(ctx, tokenName, oldToken); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConnection(ctx, conntest.FullRecord("local")); err != nil {
		t.Fatal(err)
	}
	putRaw(t, s, bucketConnections, "local", `{"record":{"state":"connected"`)
	const newToken = "bkua_new0123456789abcdef0123456789abcdef0123"
	bk := bkfake.New(t)
	bk.Add(newToken, bkfake.Token{Scopes: connection.RequiredScopes})
	svc := connection.NewService(connection.Config{
		Records: s, Secrets: s, SecretPrefix: "kitefix/",
		Buildkite: func(token string) connection.Buildkite {
			return buildkite.New(token, buildkite.WithBaseURL(bk.URL), buildkite.WithLimiter(nil))
		},
		WebhookBaseURL: "http://127.0.0.1:8080",
	})
	rec, err := svc.Connect(ctx, "local", newToken)
	if err == nil {
		t.Fatalf("Connect over a damaged record succeeded: %+v", rec)
	}
	got, err := s.GetSecret(ctx, tokenName)
	if err != nil || got != oldToken {
		t.Errorf("stored token after the failed connect: changed (err %v)", err)
	}
}

// editValue rewrites one stored value of a closed data directory with
// bbolt itself, so the file stays sound and only the value is damaged.
func editValue(t *testing.T, dir string, bucket []byte, key string, edit func([]byte) []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		v := b.Get([]byte(key))
		if v == nil {
			return fmt.Errorf("no %s in %s", key, bucket)
		}
		return b.Put([]byte(key), edit(append([]byte(nil), v...)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func putRaw(t *testing.T, s *Store, bucket []byte, key, value string) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), []byte(value)) })
	if err != nil {
		t.Fatal(err)
	}
}

func TestMoveAside(t *testing.T) {
	dir := seeded(t)
	now := time.Date(2026, 12, 2, 6, 30, 5, 0, time.UTC)
	want := dir + ".broken-20261202T063005Z"

	// Held by a running server: refused, nothing moved.
	s := openStore(t, dir)
	if moved, err := MoveAside(dir, now); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("MoveAside of an open store = %q, %v; want an in-use error", moved, err)
	}
	_ = s.Close()

	truncate(t, filepath.Join(dir, DBFile), 0)
	before := listing(t, dir)
	moved, err := MoveAside(dir+"/", now)
	if err != nil || moved != want {
		t.Fatalf("MoveAside = %q, %v; want %q", moved, err, want)
	}
	if after := listing(t, moved); after != before {
		t.Errorf("moved data differs:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still there: %v", dir, err)
	}

	// Same second again, onto an empty directory of the name: a new name.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if moved, err := MoveAside(dir, now); err != nil || moved != want+"-2" {
		t.Errorf("second MoveAside = %q, %v; want %q", moved, err, want+"-2")
	}
	if moved, err := MoveAside(dir, now); err != nil || moved != "" {
		t.Errorf("MoveAside of nothing = %q, %v; want \"\", nil", moved, err)
	}
	// And the fresh start works.
	openStore(t, dir)
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// garble overwrites n bytes from off with random ones.
func garble(t *testing.T, path string, off, n int64, seed uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := off; i < off+n && i < int64(len(b)); i++ {
		b[i] = byte(rng.Uint32())
	}
	write(t, path, b)
}

// listing is the names, sizes and modes of dir's files.
func listing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s %d %v %x", e.Name(), info.Size(), info.Mode(), sha256.Sum256(b)))
	}
	return strings.Join(parts, "; ")
}
