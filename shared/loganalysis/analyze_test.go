package loganalysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func analyzeString(t *testing.T, s string) Result {
	t.Helper()
	res, err := Analyze(context.Background(), strings.NewReader(s), Options{})
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	checkResult(t, []byte(s), res)
	return res
}

func TestAnalyzeLineNumbering(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		lines      int64
		start, end int64
	}{
		{"LF only, CR stays inside its line", "a\r\nb\r\nerror: boom\r\nd\r\n", 4, 3, 3},
		{"no final newline", "a\nb\nerror: boom", 3, 3, 3},
		{"CR redraws are one line", "1%\r50%\r100%\nerror: boom\n", 2, 2, 2},
		{"blank lines count", "\n\n\nerror: boom\n\n", 5, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := analyzeString(t, tt.in)
			if res.Lines != tt.lines {
				t.Errorf("lines = %d, want %d", res.Lines, tt.lines)
			}
			if len(res.Excerpts) == 0 {
				t.Fatal("no excerpt")
			}
			got := [2]int64{res.Excerpts[0].StartLine, res.Excerpts[0].EndLine}
			if diff := cmp.Diff([2]int64{tt.start, tt.end}, got); diff != "" {
				t.Errorf("excerpt range (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnalyzeEmpty(t *testing.T) {
	res := analyzeString(t, "")
	want := Result{Category: CategoryUnknown, Summary: "the log is empty", Excerpts: []Excerpt{},
		FailingTests: []FailingTest{}, Errors: []ErrorLocation{}, Fingerprint: res.Fingerprint}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAnalyzeJSONShape(t *testing.T) {
	res := analyzeString(t, "$ make\nsrc/a.c:3:7: error: boom\n🚨 Error: The command exited with status 2\n")
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	want := []string{"bytes", "category", "command", "errors", "excerpts", "exit_status", "failing_tests",
		"fingerprint", "lines", "section", "summary"}
	if diff := cmp.Diff(want, keys, cmpSorted); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s", diff)
	}
	if res.Command != "make" {
		t.Errorf("command = %q, want make", res.Command)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestAnalyzeHostileInput(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	tests := []struct {
		name, in string
	}{
		{"invalid UTF-8", "\xff\xfe\xfd error: bad \xc3\x28 bytes\n"},
		{"NUL bytes", "a\x00b\nerror\x00: boom\x00\n"},
		{"line over 1 MiB", "start\n" + long + "\nerror: after the long line\n"},
		{"long line with the error", "error: " + long + "\n"},
		{"only newlines", strings.Repeat("\n", 1000)},
		{"only escapes", "\x1b[31m\x1b[0m\n\x1b_bk;t=1\x07\n"},
		{"unterminated escape", "\x1b_bk;t=1 error: x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := analyzeString(t, tt.in)
			for _, e := range res.Excerpts {
				if !utf8Valid(e.Text) {
					t.Errorf("excerpt text is not valid UTF-8: %q", e.Text)
				}
				if len(e.Text) > 40*(maxLineText+1) {
					t.Errorf("excerpt text is %d bytes long", len(e.Text))
				}
			}
			if _, err := json.Marshal(res); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestAnalyzeLongLineCounts(t *testing.T) {
	in := strings.Repeat("y", 2<<20) + "\nerror: boom\n"
	res := analyzeString(t, in)
	if res.Excerpts[0].StartLine != 2 {
		t.Errorf("excerpt starts at %d, want 2", res.Excerpts[0].StartLine)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestAnalyzeReadError(t *testing.T) {
	_, err := Analyze(context.Background(), io.MultiReader(strings.NewReader("a\nb\n"), errReader{}), Options{})
	if err == nil || !strings.Contains(err.Error(), "read log: connection reset") {
		t.Errorf("err = %v, want a read error", err)
	}
}

func TestAnalyzeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Analyze(ctx, strings.NewReader("a\n"), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestAnalyzeBuildkiteFailingGroup(t *testing.T) {
	log := "--- :package: Install\n$ npm ci\nnpm WARN deprecated thing\n" +
		"--- :test_tube: Test\n$ make test\nrunning\nError: expected 1, got 2\n    at t (a.test.js:3:9)\n" +
		"🚨 Error: The command exited with status 2\n^^^ +++\n~~~ Running global pre-exit hook\n$ cleanup\n"
	res := analyzeString(t, log)
	got := []any{res.Section, res.Command, *res.ExitStatus, res.Excerpts[0].StartLine, res.Excerpts[0].EndLine}
	want := []any{":test_tube: Test", "make test", 2, int64(7), int64(8)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAnalyzeTravisFailingCommand(t *testing.T) {
	log := "$ npm ci\nadded 10 packages\nThe command \"npm ci\" exited with 0.\n" +
		"$ npm test\n> mocha\n  1 failing\n\n  1) widget saves:\n     AssertionError: expected 500 to equal 201\n\n" +
		"npm ERR! Test failed.\nThe command \"npm test\" exited with 1.\n\nDone. Your build exited with 1.\n"
	res := analyzeString(t, log)
	got := []any{res.Command, *res.ExitStatus, res.Category, res.Excerpts[0].StartLine}
	want := []any{"npm test", 1, CategoryTest, int64(8)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAnalyzeMemoryStaysFlat(t *testing.T) {
	// 64 MiB of output with errors sprinkled through it, streamed.
	r := &repeatReader{line: []byte("\x1b_bk;t=1700000000000\x07step output line with some words in it\n"),
		every: 5000, odd: []byte("src/x.c:1:2: error: something broke here\n"), left: 64 << 20}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := Analyze(context.Background(), r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if res.Bytes != 64<<20 {
		t.Errorf("bytes = %d, want %d", res.Bytes, 64<<20)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("allocated %d MiB analyzing 64 MiB", grew>>20)
	}
}

// repeatReader yields left bytes of line, with odd instead every every lines.
type repeatReader struct {
	line, odd []byte
	every, n  int
	left      int
	pending   []byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.left > 0 {
		if len(r.pending) == 0 {
			r.n++
			r.pending = r.line
			if r.n%r.every == 0 {
				r.pending = r.odd
			}
		}
		k := copy(p[n:min(len(p), n+r.left)], r.pending)
		r.pending = r.pending[k:]
		n += k
		r.left -= k
	}
	return n, nil
}

func FuzzAnalyze(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("error: x\n"))
	f.Add([]byte("--- FAIL: TestX (0.1s)\n    x_test.go:3: boom\nFAIL\n"))
	f.Add([]byte("\x1b_bk;t=1\x07--- build\n$ make\n\x1b[31merror\x1b[0m\r\n🚨 Error: The command exited with status 2\n^^^ +++\n"))
	f.Add([]byte("The command \"x\" exited with 1.\n\xff\x00\r\r\n"))
	f.Add([]byte("a.go:1:2: undefined: y\n  --> src/a.rs:1:2\nerror[E1]: z\n  --> src/a.rs:3:4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Analyze(context.Background(), bytes.NewReader(data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, data, res)
		if len(res.FailingTests) > maxListed || len(res.Errors) > maxListed || len(res.Excerpts) > 2 {
			t.Fatalf("unbounded lists: %d tests, %d errors, %d excerpts",
				len(res.FailingTests), len(res.Errors), len(res.Excerpts))
		}
		for _, e := range res.Excerpts {
			if e.EndLine-e.StartLine+1 > 40 {
				t.Fatalf("excerpt of %d lines", e.EndLine-e.StartLine+1)
			}
		}
	})
}

func TestExitReportsShareTheirSegment(t *testing.T) {
	a := newAnalyzer(Options{}.withDefaults())
	for _, l := range []string{"--- build", "$ make", "error: boom", "# Exit status 2",
		"🚨 Error: The command exited with status 2", "^^^ +++", "~~~ Running pre-exit hook", "$ cleanup"} {
		a.line([]byte(l))
	}
	got := []any{len(a.fails), a.fails[0].seg, a.fails[0].status, a.fails[0].command}
	if diff := cmp.Diff([]any{1, 0, 2, "make"}, got); diff != "" {
		t.Errorf("failure reports (-want +got):\n%s", diff)
	}
}
