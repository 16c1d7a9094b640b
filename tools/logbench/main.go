// Command logbench measures the log analyzer on a generated Buildkite-style
// log: throughput in MB/s and the peak resident memory of `kitefix analyze`
// run as a child process, alone and with the log as its own --baseline (one
// more pass over the bytes), and the in-process throughput.
//
// The log is written to a temporary file as it is generated, so the
// generator never holds it in memory.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

func main() {
	size := flag.Int64("size", 1<<30, "bytes of log to generate")
	keep := flag.Bool("keep", false, "keep the generated log and binary")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the in-process runs to this file")
	runs := flag.Int("runs", 3, "how many times to run each measurement")
	flag.Parse()
	if err := run(context.Background(), *size, *keep, *cpuProfile, max(*runs, 1), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "logbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, size int64, keep bool, cpuProfile string, runs int, w io.Writer) error {
	dir, err := os.MkdirTemp("", "logbench")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	logPath := filepath.Join(dir, "job.log")
	n, err := writeLog(logPath, size)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "generated %s: %.1f MiB\n", logPath, float64(n)/(1<<20))

	bin := filepath.Join(dir, "kitefix")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kitefix")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build kitefix: %w", err)
	}

	if _, err := measureCLI(ctx, w, bin, n, runs, "kitefix analyze", "analyze", "--json", logPath); err != nil {
		return err
	}
	// With the log as its own passing run: one more pass over the same
	// bytes, and every signalling line looked up.
	if _, err := measureCLI(ctx, w, bin, n, runs, "kitefix analyze --baseline (the log itself)",
		"analyze", "--json", "--baseline", logPath, logPath); err != nil {
		return err
	}

	f, err := os.Open(logPath)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("start profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var best time.Duration
	var res loganalysis.Result
	for range runs {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewind log: %w", err)
		}
		start := time.Now()
		res, err = loganalysis.Analyze(ctx, f, loganalysis.Options{})
		if err != nil {
			return fmt.Errorf("analyze in process: %w", err)
		}
		if el := time.Since(start); best == 0 || el < best {
			best = el
		}
	}
	fmt.Fprintf(w, "in process (best of %d): %.2fs, %.0f MB/s (%d lines, category %s)\n",
		runs, best.Seconds(), float64(n)/1e6/best.Seconds(), res.Lines, res.Category)
	return nil
}

// measureCLI runs kitefix with args on one core several times (the machine
// may be busy) and prints the fastest run's wall and CPU throughput over n
// bytes of failed log, and the largest peak memory.
func measureCLI(ctx context.Context, w io.Writer, bin string, n int64, runs int, name string, args ...string) (time.Duration, error) {
	var best, bestCPU time.Duration
	var rss int64
	for range runs {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout = io.Discard
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("run %s: %w", name, err)
		}
		el := time.Since(start)
		cpu := el
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, int64(ru.Maxrss)*1024) // kilobytes on Linux
			cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		}
		if best == 0 || el < best {
			best, bestCPU = el, cpu
		}
	}
	fmt.Fprintf(w, "%s (GOMAXPROCS=1, best of %d): %.2fs wall, %.0f MB/s; %.2fs CPU, %.0f MB/s per CPU second; peak RSS %.1f MiB\n",
		name, runs, best.Seconds(), float64(n)/1e6/best.Seconds(), bestCPU.Seconds(), float64(n)/1e6/bestCPU.Seconds(), float64(rss)/(1<<20))
	return best, nil
}

// writeLog writes about size bytes of a Buildkite-style job log to path and
// returns the bytes written.
func writeLog(path string, size int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("create log: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	g := &generator{w: bw}
	g.generate(size)
	if err := bw.Flush(); err != nil {
		f.Close()
		return 0, fmt.Errorf("write log: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close log: %w", err)
	}
	return g.n, nil
}

// generator writes a plausible Buildkite job log: groups, commands, build
// and test output with timestamp markers, colour, progress redraws, some
// warnings, and a failing test near the end.
type generator struct {
	w   *bufio.Writer
	n   int64
	ms  int64
	buf []byte
}

var ordinary = []string{
	"ok  \tgithub.com/acme/widgets/internal/store\t0.412s\tcoverage: 81.2% of statements",
	"=== RUN   TestWidgetRender/with_a_long_name_%d",
	"--- PASS: TestWidgetRender/with_a_long_name_%d (0.00s)",
	"\x1b[32m✓\x1b[0m renders the settings page for tenant %d (12 ms)",
	"Compiling serde_derive v1.0.%d",
	"[INFO] Building jar: /workspace/target/widgets-1.0.%d.jar",
	"Step %d/12 : RUN apt-get install -y --no-install-recommends ca-certificates",
	"Downloading https://registry.npmjs.org/left-pad/-/left-pad-1.%d.0.tgz",
	"    at Object.<anonymous> (src/widgets/render.test.ts:%d:15)",
	"warning: unused variable `count` in src/lib.rs line %d",
	"  \x1b[2m[REDACTED]\x1b[0m exported AWS_REGION and %d other variables",
}

func (g *generator) line(s string) {
	g.buf = g.buf[:0]
	g.buf = append(g.buf, "\x1b_bk;t="...)
	g.buf = strconv.AppendInt(g.buf, 1700000000000+g.ms, 10)
	g.buf = append(g.buf, '\x07')
	g.buf = append(g.buf, s...)
	g.buf = append(g.buf, '\n')
	g.ms += 3
	nw, _ := g.w.Write(g.buf)
	g.n += int64(nw)
}

func (g *generator) generate(size int64) {
	g.line("~~~ Preparing working directory")
	g.line("$ git clone -v -- git@github.com:acme/widgets.git .")
	g.line("--- :go: Build and test")
	g.line("$ make test")
	tail := int64(4 << 10)
	for i := 0; g.n < size-tail; i++ {
		switch {
		case i%997 == 0:
			g.line(fmt.Sprintf("Progress: %d%%\r\x1b[2KProgress: %d%%\r\x1b[2KProgress: 100%%", i%100, (i+1)%100))
		case i%5000 == 0:
			g.line(fmt.Sprintf("--- :package: Step %d", i/5000))
		default:
			g.line(fmt.Sprintf(ordinary[i%len(ordinary)], i))
		}
	}
	g.line("--- FAIL: TestWidgetSave (0.03s)")
	g.line("    widget_test.go:42: save widget: got status 500, want 201")
	g.line("FAIL")
	g.line("FAIL\tgithub.com/acme/widgets\t1.204s")
	g.line("make: *** [Makefile:12: test] Error 1")
	g.line("🚨 Error: The command exited with status 2")
	g.line("^^^ +++")
	g.line("user command error: exit status 2")
}
