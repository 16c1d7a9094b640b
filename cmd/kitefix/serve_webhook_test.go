package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kitefix/kitefix/shared/syncbuf"
)

// TestServeWebhookBaseURL: with WEBHOOK_BASE_URL set, serve says where
// Buildkite should send webhooks, and a delivery addressed to the tunnel's
// host reaches the webhook handler (an unknown id: 401, never 503).
func TestServeWebhookBaseURL(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncbuf.Buffer{}
	getenv := func(k string) string {
		if k == "WEBHOOK_BASE_URL" {
			return "https://kitefix-tunnel.example.com"
		}
		return ""
	}
	done := make(chan int, 1)
	go func() {
		done <- runServe(ctx, []string{"--addr", "127.0.0.1:0", "--data", filepath.Join(t.TempDir(), "data")}, pw, stderr, getenv)
		pw.Close()
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d; stderr: %s", code, stderr.String())
		}
	}()
	r := bufio.NewReader(pr)
	first, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no URL: %v; stderr: %s", err, stderr.String())
	}
	second, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no webhook line: %v", err)
	}
	go io.Copy(io.Discard, r)
	if want := "https://kitefix-tunnel.example.com/hooks/<webhook id>"; !strings.Contains(second, want) {
		t.Errorf("second line %q, want it to name %s", second, want)
	}
	url := strings.Fields(first)[3]

	req, _ := http.NewRequest(http.MethodPost, url+"/hooks/0123456789abcdef0123456789abcdef", strings.NewReader(`{"event":"ping"}`))
	req.Host = "kitefix-tunnel.example.com"
	req.Header.Set("X-Buildkite-Event", "ping")
	req.Header.Set("X-Buildkite-Token", "not-a-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"unauthorized"`) {
		t.Errorf("delivery through the tunnel's host = %d %s, want 401 unauthorized", resp.StatusCode, body)
	}
}
