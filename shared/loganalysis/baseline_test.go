package loganalysis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		same bool
	}{
		{"ok   github.com/acme/widget\t0.412s", "ok github.com/acme/widget 1.093s", true},
		{"[10:00:09.123] Downloading 12/40 (75%)", "[11:02:00.001] Downloading 3/40 (7%)", true},
		{"commit 9f3c2a1e0b7d", "commit 0b7d9f3c2a1e", true},
		{"HEAD is now at deadbeefcafe", "HEAD is now at cafebabefeed", true},
		{"cd /tmp/go-build123456/b001", "cd /tmp/go-build98765/b001", true},
		{`copy C:\Users\ci\AppData\Local\Temp\xyz\a.txt`, `copy C:\Users\ci\AppData\Local\Temp\abc\a.txt`, true},
		{"  indented   words ", "indented words", true},
		{"npm WARN deprecated request@2.88.2", "npm WARN deprecated request@2.88.0", true},
		{"--- FAIL: TestSave (0.01s)", "--- PASS: TestSave (0.01s)", false},
		{"widget.go:12:3: undefined: save", "widget.go:12:3: undefined: load", false},
		{"error: build failed", "warning: build failed", false},
	}
	for _, tt := range tests {
		a := string(normalizeLine(nil, []byte(tt.a)))
		b := string(normalizeLine(nil, []byte(tt.b)))
		if (a == b) != tt.same {
			t.Errorf("normalizeLine(%q) = %q, normalizeLine(%q) = %q: same = %v, want %v", tt.a, a, tt.b, b, a == b, tt.same)
		}
	}
	if got := normalizeLine(nil, []byte(" \t ")); len(got) != 0 {
		t.Errorf("normalizeLine(blank) = %q, want empty", got)
	}
}

func TestBaselineContains(t *testing.T) {
	t.Parallel()
	pass := "2026-11-20T10:00:01.1000000Z npm WARN deprecated har-validator@5.1.5\n" +
		"2026-11-20T10:00:02.1000000Z Error: connect ECONNREFUSED 127.0.0.1:5432 (retrying)\n" +
		"\n" +
		"\x1b[32m✓ 120 tests passed\x1b[0m in 3.2s\n"
	b, err := NewBaseline(context.Background(), strings.NewReader(pass))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Lines(), int64(4); got != want {
		t.Errorf("Lines() = %d, want %d", got, want)
	}
	if got, want := b.Len(), 3; got != want {
		t.Errorf("Len() = %d, want %d (the blank line is not remembered)", got, want)
	}
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"npm WARN deprecated har-validator@5.1.6", true},
		{"Error: connect ECONNREFUSED 127.0.0.1:6543 (retrying)", true},
		{"✓ 118 tests passed in 9.9s", true},
		{"✗ 2 tests failed in 3.1s", false},
		{"", false},
	} {
		if got := b.Contains([]byte(tt.line)); got != tt.want {
			t.Errorf("Contains(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
	var nilBase *Baseline
	if nilBase.Contains([]byte("anything")) {
		t.Error("a nil Baseline contains a line")
	}
}

func TestBaselineCap(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	// Distinct lines without digits: letters spell the line number.
	for i := range maxBaselineLines + 10 {
		fmt.Fprintf(&sb, "line %s\n", strings.Map(func(r rune) rune { return 'g' + (r - '0') }, fmt.Sprint(i)))
	}
	b, err := NewBaseline(context.Background(), strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != maxBaselineLines || !b.Full() {
		t.Errorf("Len() = %d, Full() = %v; want %d, true", b.Len(), b.Full(), maxBaselineLines)
	}
	if got, want := len(b.slots), baselineSlots; got != want {
		t.Errorf("table has %d slots, want %d", got, want)
	}
}

func TestNewBaselineContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewBaseline(ctx, strings.NewReader("a\nb\n")); !errors.Is(err, context.Canceled) {
		t.Errorf("NewBaseline with a cancelled context: err = %v, want context.Canceled", err)
	}
}

// TestAnalyzeBaseline checks that lines the passing run printed too are not
// taken for the failure.
func TestAnalyzeBaseline(t *testing.T) {
	t.Parallel()
	pass := "+++ Test\n" +
		"ok  \tgithub.com/acme/widget\t0.301s\n" +
		"cleaning up\n" +
		"Error: could not reach the telemetry endpoint at 10.0.0.7:443\n" +
		"Error: telemetry upload failed after 3 attempts\n" +
		"done\n"
	fail := "+++ Test\n" +
		"--- FAIL: TestSave (0.02s)\n" +
		"    widget_test.go:12: got 500, want 201\n" +
		"FAIL\tgithub.com/acme/widget\t0.412s\n" +
		"cleaning up\n" +
		"Error: could not reach the telemetry endpoint at 10.0.0.3:443\n" +
		"Error: telemetry upload failed after 3 attempts\n" +
		"done\n"
	b, err := NewBaseline(context.Background(), strings.NewReader(pass))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opts Options
		want []int64 // lines of the first excerpt that must be there
		not  []int64 // and that must not
	}{
		{"without", Options{}, []int64{2, 3, 6}, nil},
		{"with", Options{Baseline: b}, []int64{2, 3}, []int64{6, 7}},
	} {
		res, err := Analyze(context.Background(), strings.NewReader(fail), tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Excerpts) == 0 {
			t.Fatalf("%s: no excerpt", tt.name)
		}
		x := res.Excerpts[0]
		in := func(n int64) bool { return n >= x.StartLine && n <= x.EndLine }
		for _, n := range tt.want {
			if !in(n) {
				t.Errorf("%s: excerpt %d-%d misses line %d", tt.name, x.StartLine, x.EndLine, n)
			}
		}
		for _, n := range tt.not {
			if in(n) {
				t.Errorf("%s: excerpt %d-%d holds line %d, which the passing run printed", tt.name, x.StartLine, x.EndLine, n)
			}
		}
		if diff := cmp.Diff(CategoryTest, res.Category); diff != "" {
			t.Errorf("%s: category (-want +got):\n%s", tt.name, diff)
		}
	}
}

// FuzzBaseline checks that every line of a passing log is found in its
// baseline, and that analyzing against it never fails on any input.
func FuzzBaseline(f *testing.F) {
	f.Add([]byte("ok  \tgithub.com/acme/widget\t0.301s\nError: telemetry at 10.0.0.7:443\n"), []byte("--- FAIL: TestSave (0.02s)\n"))
	f.Add([]byte("\x1b[31merror\x1b[0m /tmp/x1/a.go\r\n\n"), []byte("error /tmp/x2/a.go\n"))
	f.Fuzz(func(t *testing.T, pass, fail []byte) {
		ctx := context.Background()
		b, err := NewBaseline(ctx, bytes.NewReader(pass))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(pass, []byte("\n")) {
			if len(line) > maxKeep {
				continue // only the start of a long line is kept
			}
			c := Clean(nil, line)
			if len(normalizeLine(nil, c[:min(len(c), maxLineText)])) > 0 && !b.Full() && !b.Contains(c) {
				t.Errorf("the baseline lacks its own line %q", line)
			}
		}
		if _, err := Analyze(ctx, bytes.NewReader(fail), Options{Baseline: b}); err != nil {
			t.Fatal(err)
		}
	})
}
