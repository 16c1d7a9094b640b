package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/localstore"
)

// connected makes a data directory holding a connection, the server stopped.
func connected(t *testing.T, bk *bkfake.Server) string {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), "data")
	url, _, stop := startServeStoppable(t, dataDir, bk.URL)
	if status, _, raw := call(t, "PUT", url+"/v1/integrations/buildkite", `{"token":"`+serveToken+`"}`); status != 200 {
		t.Fatalf("connect = %d %s", status, raw)
	}
	stop()
	return dataDir
}

// TestServeRefusesDamagedData: kitefix serve does not start on damaged
// data; it says which file, and what to do.
func TestServeRefusesDamagedData(t *testing.T) {
	bk := bkfake.New(t)
	bk.Add(serveToken, bkfake.Token{Scopes: connection.RequiredScopes})
	tests := []struct {
		name   string
		damage func(t *testing.T, dataDir string) string // returns the file to name
		want   string
	}{
		{"key file deleted", func(t *testing.T, d string) string {
			p := filepath.Join(d, localstore.KeyFile)
			must(t, os.Remove(p))
			return p
		}, "sealed with it"},
		{"database emptied", func(t *testing.T, d string) string {
			p := filepath.Join(d, localstore.DBFile)
			must(t, os.Truncate(p, 0))
			return p
		}, "is empty"},
		{"database cut short", func(t *testing.T, d string) string {
			p := filepath.Join(d, localstore.DBFile)
			must(t, os.Truncate(p, 5*4096+100))
			return p
		}, "is cut short"},
		{"database deleted", func(t *testing.T, d string) string {
			p := filepath.Join(d, localstore.DBFile)
			must(t, os.Remove(p))
			return p
		}, "is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := connected(t, bk)
			file := tt.damage(t, dataDir)
			var out, errb bytes.Buffer
			getenv := func(k string) string {
				if k == "BUILDKITE_API_URL" {
					return bk.URL
				}
				return ""
			}
			code := runServe(context.Background(), []string{"--addr", "127.0.0.1:0", "--data", dataDir}, &out, &errb, getenv)
			if code != 1 {
				t.Errorf("exit = %d, want 1", code)
			}
			msg := errb.String()
			for _, want := range []string{file, tt.want, "restore it", "kitefix serve --reset --data " + dataDir} {
				if !strings.Contains(msg, want) {
					t.Errorf("stderr does not say %q:\n%s", want, msg)
				}
			}
			if out.Len() != 0 {
				t.Errorf("serve printed %q: it must not claim to serve", out.String())
			}
		})
	}
}

// TestServeReset: --reset moves the damaged data aside, deleting nothing,
// and serves with empty data.
func TestServeReset(t *testing.T) {
	bk := bkfake.New(t)
	bk.Add(serveToken, bkfake.Token{Scopes: connection.RequiredScopes})
	dataDir := connected(t, bk)
	must(t, os.Remove(filepath.Join(dataDir, localstore.KeyFile)))
	db, err := os.ReadFile(filepath.Join(dataDir, localstore.DBFile))
	must(t, err)

	url, stderr := startServe(t, dataDir, bk.URL, "--reset")
	status, body, raw := call(t, "GET", url+"/v1/integrations/buildkite", "")
	if status != 200 || body["state"] != "not_connected" {
		t.Errorf("status after reset = %d %s", status, raw)
	}
	moved, err := filepath.Glob(dataDir + ".broken-*")
	if err != nil || len(moved) != 1 {
		t.Fatalf("moved-aside directories: %v, %v; want one", moved, err)
	}
	kept, err := os.ReadFile(filepath.Join(moved[0], localstore.DBFile))
	if err != nil || !bytes.Equal(kept, db) {
		t.Errorf("the old database was not kept as it was in %s (%v)", moved[0], err)
	}
	if !strings.Contains(stderr.String(), "moved "+dataDir+" to "+moved[0]) {
		t.Errorf("serve did not say where the data went: %s", stderr.String())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
