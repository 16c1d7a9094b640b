package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/syncbuf"
)

const serveToken = "bkua_5e7e0123456789abcdef0123456789abcdef0123"

// startServe runs `kitefix serve` on a free loopback port and returns its
// URL; the server stops when the test ends.
func startServe(t *testing.T, dataDir string, bkURL string, extra ...string) (string, *syncbuf.Buffer) {
	t.Helper()
	url, stderr, stop := startServeStoppable(t, dataDir, bkURL, extra...)
	t.Cleanup(stop)
	return url, stderr
}

// startServeStoppable is startServe with the stop left to the caller, and
// extra flags.
func startServeStoppable(t testing.TB, dataDir string, bkURL string, extra ...string) (string, *syncbuf.Buffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncbuf.Buffer{}
	getenv := func(k string) string {
		if k == "BUILDKITE_API_URL" {
			return bkURL
		}
		return ""
	}
	done := make(chan int, 1)
	go func() {
		done <- runServe(ctx, append([]string{"--addr", "127.0.0.1:0", "--data", dataDir}, extra...), pw, stderr, getenv)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve printed no URL: %v; stderr: %s", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("serve exited %d; stderr: %s", code, stderr.String())
			}
		})
	}
	fields := strings.Fields(line)
	if len(fields) < 4 || !strings.HasPrefix(fields[3], "http://127.0.0.1:") {
		stop()
		t.Fatalf("serve printed %q, want its URL", line)
	}
	return fields[3], stderr, stop
}

func call(t *testing.T, method, url, body string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func TestServeConnectsAndKeepsTokenSealed(t *testing.T) {
	bk := bkfake.New(t)
	bk.Add(serveToken, bkfake.Token{Scopes: append(append([]string{}, connection.RequiredScopes...), "write_builds")})
	dataDir := filepath.Join(t.TempDir(), "data")
	url, stderr := startServe(t, dataDir, bk.URL)

	status, page, _ := call(t, "GET", url+"/", "")
	if status != 200 || page != nil {
		t.Errorf("GET / = %d; want the settings page (HTML)", status)
	}
	if status, _, raw := call(t, "GET", url+"/app.js", ""); status != 200 || !strings.Contains(raw, "/v1/integrations/buildkite") {
		t.Errorf("GET /app.js = %d", status)
	}

	status, body, raw := call(t, "PUT", url+"/v1/integrations/buildkite", `{"token":"`+serveToken+`"}`)
	if status != 200 || body["state"] != "connected" {
		t.Fatalf("connect = %d %s", status, raw)
	}
	hook := body["webhook"].(map[string]any)
	if !strings.HasPrefix(hook["url"].(string), url+"/hooks/") {
		t.Errorf("webhook url %v does not point at the local server %s", hook["url"], url)
	}
	secret := hook["secret"].(string)

	status, _, raw = call(t, "GET", url+"/v1/integrations/buildkite", "")
	if status != 200 || strings.Contains(raw, serveToken) || strings.Contains(raw, secret) {
		t.Errorf("status = %d %s", status, raw)
	}

	// Neither the token nor the webhook secret lies in clear in the data files.
	entries, err := os.ReadDir(dataDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("read data dir: %v (%d entries)", err, len(entries))
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dataDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(serveToken)) || bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds a secret in clear", e.Name())
		}
	}
	if info, err := os.Stat(filepath.Join(dataDir, "secret.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	if strings.Contains(stderr.String(), serveToken) {
		t.Error("the token appears in the server's log")
	}
}

func TestServeKeepsConnectionAcrossRestarts(t *testing.T) {
	bk := bkfake.New(t)
	bk.Add(serveToken, bkfake.Token{Scopes: connection.RequiredScopes})
	dataDir := t.TempDir()
	url, _, stop := startServeStoppable(t, dataDir, bk.URL)
	if status, _, raw := call(t, "PUT", url+"/v1/integrations/buildkite", `{"token":"`+serveToken+`"}`); status != 200 {
		t.Fatalf("connect = %d %s", status, raw)
	}
	stop()

	url, _ = startServe(t, dataDir, bk.URL)
	status, body, raw := call(t, "POST", url+"/v1/integrations/buildkite/verify", "")
	if status != 200 || body["state"] != "connected" {
		t.Errorf("verify after restart = %d %s", status, raw)
	}
}

func TestServeBadUsage(t *testing.T) {
	var out, errb bytes.Buffer
	getenv := func(string) string { return "" }
	if code := runServe(context.Background(), []string{"--nope"}, &out, &errb, getenv); code != 2 {
		t.Errorf("unknown flag exit = %d, want 2", code)
	}
	if code := runServe(context.Background(), []string{"extra"}, &out, &errb, getenv); code != 2 {
		t.Errorf("extra argument exit = %d, want 2", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if code := runServe(ctx, []string{"--addr", "256.0.0.1:1"}, &out, &errb, getenv); code != 1 {
		t.Errorf("bad address exit = %d, want 1", code)
	}
}
