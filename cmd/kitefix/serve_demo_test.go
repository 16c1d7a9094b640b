package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/syncbuf"
)

// runDemo runs `kitefix serve --demo` with extra flags until it has
// connected the simulated organization, then stops it; it returns what
// the server printed and its exit code.
func runDemo(t *testing.T, extra ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	getenv := func(k string) string {
		if k == "BUILDKITE_API_URL" {
			return "http://127.0.0.1:9" // never asked: the demo brings its own
		}
		return ""
	}
	done := make(chan int, 1)
	go func() {
		done <- runServe(ctx, append([]string{"--demo", "--addr", "127.0.0.1:0"}, extra...), stdout, stderr, getenv)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "demo: connected") {
		select {
		case code := <-done:
			t.Fatalf("kitefix serve --demo exited %d before connecting:\n%s\n%s", code, stdout, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kitefix serve --demo did not connect:\n%s\n%s", stdout, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	code := <-done
	if strings.Contains(stderr.String(), bkfake.DemoToken) {
		t.Errorf("the demo token appears in the log:\n%s", stderr)
	}
	return stdout.String(), code
}

var dataIn = regexp.MustCompile(`\(data in ([^)]+)\)`)

// TestServeDemoData checks where the demo keeps its data: a fresh
// temporary directory, gone when the server stops, or the --data
// directory, which stays.
func TestServeDemoData(t *testing.T) {
	t.Parallel()
	out, code := runDemo(t)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	m := dataIn.FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(filepath.Base(filepath.Dir(m[1])), "kitefix-demo-") {
		t.Fatalf("data directory in %q: want one in a temporary kitefix-demo- directory", out)
	}
	if _, err := os.Stat(filepath.Dir(m[1])); !os.IsNotExist(err) {
		t.Errorf("temporary data %s after the demo stopped: %v, want it removed", m[1], err)
	}
	if !strings.Contains(out, "Demo: open http://127.0.0.1:") || strings.Contains(out, "tunnel") {
		t.Errorf("kitefix serve --demo printed %q: want the page to open, and no tunnel advice", out)
	}

	dir := filepath.Join(t.TempDir(), "demo-data")
	out, code = runDemo(t, "--data", dir)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir)); err != nil {
		t.Errorf("--data %s after the demo stopped: %v, want it kept", dir, err)
	}
	// A second demo on the same data connects again (with a new webhook
	// secret, the old one being shown no more).
	if _, code := runDemo(t, "--data", dir); code != 0 {
		t.Errorf("second demo on the same data: exit %d", code)
	}

	// --reset has nothing to move aside in a fresh directory, and leaves
	// nothing behind.
	out, code = runDemo(t, "--reset")
	if m := dataIn.FindStringSubmatch(out); code != 0 || m == nil {
		t.Fatalf("--demo --reset: exit %d:\n%s", code, out)
	} else if _, err := os.Stat(filepath.Dir(m[1])); !os.IsNotExist(err) {
		t.Errorf("temporary data %s after --demo --reset stopped: %v, want it removed", m[1], err)
	}
}
