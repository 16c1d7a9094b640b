package loganalysis

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

// benchLog builds about n bytes of ordinary Buildkite-style output with
// timestamp markers, ending in a failed test.
func benchLog(n int) []byte {
	lines := []string{
		"ok  \tgithub.com/acme/widgets/internal/store\t0.412s\tcoverage: 81.2%% of statements %d",
		"=== RUN   TestWidgetRender/with_a_long_name_%d",
		"--- PASS: TestWidgetRender/with_a_long_name_%d (0.00s)",
		"\x1b[32m✓\x1b[0m renders the settings page for tenant %d (12 ms)",
		"Compiling serde_derive v1.0.%d",
		"[INFO] Building jar: /workspace/target/widgets-1.0.%d.jar",
		"Step %d/12 : RUN apt-get install -y --no-install-recommends ca-certificates",
		"    at Object.<anonymous> (src/widgets/render.test.ts:%d:15)",
		"warning: unused variable `count` in src/lib.rs line %d",
	}
	var b bytes.Buffer
	b.WriteString("--- :go: Build and test\n$ make test\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "\x1b_bk;t=%d\x07", 1700000000000+i)
		fmt.Fprintf(&b, lines[i%len(lines)], i)
		b.WriteByte('\n')
	}
	b.WriteString("--- FAIL: TestWidgetSave (0.03s)\n    widget_test.go:42: got 500, want 201\nFAIL\n")
	b.WriteString("🚨 Error: The command exited with status 1\n")
	return b.Bytes()
}

func BenchmarkAnalyze(b *testing.B) {
	log := benchLog(8 << 20)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Analyze(context.Background(), bytes.NewReader(log), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClean(b *testing.B) {
	line := []byte("\x1b_bk;t=1700000000000\x07\x1b[32m✓\x1b[0m renders the settings page for tenant 12 (12 ms)")
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		buf = Clean(buf[:0], line)
	}
}

func BenchmarkLineReader(b *testing.B) {
	log := benchLog(8 << 20)
	b.SetBytes(int64(len(log)))
	for b.Loop() {
		lr := newLineReader(bytes.NewReader(log))
		for {
			if _, err := lr.next(); err == io.EOF {
				break
			}
		}
	}
}

// allErrorsLog builds about n bytes of output in which every line signals a
// failure, the worst case for candidate bookkeeping.
func allErrorsLog(n int) []byte {
	lines := []string{
		"error: cannot find symbol widget%d in src/widget.c:%d:7",
		"src/widget.c:%d:7: error: use of undeclared identifier 'w%d'",
		"FAILED tests/test_widget.py::test_save_%d - assert %d == 201",
		"    at Object.<anonymous> (src/widgets/render.test.ts:%d:%d)",
		"panic: runtime error: index out of range [%d] with length %d",
	}
	var b bytes.Buffer
	b.WriteString("--- :go: Build and test\n$ make test\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, lines[i%len(lines)], i, i%997)
		b.WriteByte('\n')
	}
	b.WriteString("🚨 Error: The command exited with status 1\n")
	return b.Bytes()
}

func BenchmarkAnalyzeAllErrors(b *testing.B) {
	log := allErrorsLog(8 << 20)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Analyze(context.Background(), bytes.NewReader(log), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewBaseline measures the one pass over a passing log that the
// baseline diff adds.
func BenchmarkNewBaseline(b *testing.B) {
	log := benchLog(8 << 20)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewBaseline(context.Background(), bytes.NewReader(log)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnalyzeBaseline measures the analysis of a failed log against a
// passing one of the same job: every signalling line is looked up.
func BenchmarkAnalyzeBaseline(b *testing.B) {
	log := benchLog(8 << 20)
	base, err := NewBaseline(context.Background(), bytes.NewReader(benchLog(4<<20)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Analyze(context.Background(), bytes.NewReader(log), Options{Baseline: base}); err != nil {
			b.Fatal(err)
		}
	}
}
