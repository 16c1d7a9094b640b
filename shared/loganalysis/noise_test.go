package loganalysis

import (
	"fmt"
	"strings"
	"testing"
)

// noiseLines are ordinary lines of passing CI jobs that mention failure
// words without anything having failed.
var noiseLines = []string{
	"ok  \tgithub.com/acme/widgets/internal/pkg%d\t0.%03ds",
	"=== RUN   TestErrorHandling/case_%d",
	"--- PASS: TestErrorHandling/case_%d (0.00s)",
	"test_error_messages_%d (tests.test_errors.ErrorTest) ... ok",
	"error handling test %d ... ok",
	"  ✓ renders an error banner for tenant %d (3 ms)",
	"Ran %d tests: all passed, 0 failures",
	"npm WARN deprecated request@2.88.%d: request has been deprecated, see https://github.com/request/request/issues/3142",
	"/usr/lib/python3/dist-packages/setuptools/command/install.py:%d: DeprecationWarning: setup.py install is deprecated",
	"warning: unused variable `retries` in src/retry.rs line %d",
	"attempt 1 failed, retrying in %ds",
	"attempt 2 succeeded",
	"+ grep -c error build/report-%d.txt",
	"0",
	"+ test 0 -eq 0",
	"Downloading https://registry.npmjs.org/error-ex/-/error-ex-1.3.%d.tgz",
	"[INFO] Tests run: %d, Failures: 0, Errors: 0, Skipped: 0",
	"    error_reporter_test.go:%d: registered 4 handlers",
	"Step %d/12 : RUN apt-get install -y --no-install-recommends ca-certificates",
	"Compiling error-chain v0.12.%d",
	"No errors found in %d files.",
	"INFO  [alembic.runtime.migration] Running upgrade %d -> head, add error_log table",
}

// noisy builds a Buildkite log: n lines of noise, then fail (the real
// failure), then after, the output that follows it. It returns the log and
// the line number of fail's first line.
func noisy(header, command string, n int, fail, after []string) (string, int) {
	var b strings.Builder
	ln := 0
	write := func(s string) {
		ln++
		fmt.Fprintf(&b, "\x1b_bk;t=%d\x07%s\n", 1700000500000+ln*41, s)
	}
	write("~~~ Running global environment hook")
	write("$ /etc/buildkite-agent/hooks/environment")
	write("~~~ Preparing working directory")
	write("$ cd /var/lib/buildkite-agent/builds/agent-1/acme/widgets")
	write("--- " + header)
	write("\x1b[90m$\x1b[0m " + command)
	for i := 0; i < n; i++ {
		line := noiseLines[i%len(noiseLines)]
		if strings.Contains(line, "%") {
			args := []any{i}
			if strings.Count(line, "%") == 2 {
				args = append(args, i%1000)
			}
			line = fmt.Sprintf(line, args...)
		}
		write(line)
	}
	at := ln + 1
	for _, l := range fail {
		write(l)
	}
	for _, l := range after {
		write(l)
	}
	return b.String(), at
}

// cleanup is what often follows a failure: services stopped, artifacts
// uploaded, the agent's exit report and hooks.
var cleanup = []string{
	"+ docker compose down --volumes",
	"Container widgets-postgres-1  Stopping",
	"Container widgets-postgres-1  Stopped",
	"Container widgets-postgres-1  Removing",
	"Container widgets-postgres-1  Removed",
	"Network widgets_default  Removed",
	"~~~ Uploading artifacts",
	"$ buildkite-agent artifact upload 'build/reports/**/*'",
	"2024-05-01 10:00:03 INFO   Found 3 files that match \"build/reports/**/*\"",
	"2024-05-01 10:00:03 INFO   Uploading artifact 0190b3f2 build/reports/junit.xml (12 KiB)",
	"2024-05-01 10:00:04 INFO   Artifact uploads completed successfully",
	"^^^ +++",
	"\x1b[31m🚨 Error: The command exited with status 1\x1b[0m",
	"~~~ Running global pre-exit hook",
	"$ /etc/buildkite-agent/hooks/pre-exit",
	"Cleaning up docker containers",
}

// exitThenCleanup is the agent's order: the exit report, then artifacts
// and hooks.
var exitThenCleanup = []string{
	"+ docker compose down --volumes",
	"Container widgets-postgres-1  Removed",
	"^^^ +++",
	"\x1b[31m🚨 Error: The command exited with status 1\x1b[0m",
	"~~~ Uploading artifacts",
	"$ buildkite-agent artifact upload 'build/reports/**/*'",
	"2024-05-01 10:00:03 INFO   Found 3 files that match \"build/reports/**/*\"",
	"2024-05-01 10:00:04 INFO   Artifact uploads completed successfully",
	"~~~ Running global pre-exit hook",
	"$ /etc/buildkite-agent/hooks/pre-exit",
	"Cleaning up docker containers",
}

func TestNoisyLogs(t *testing.T) {
	tests := []struct {
		name, header, command string
		n                     int
		fail, after           []string
		want                  Category
	}{
		{"go test near the end", ":go: Test", "go test ./...", 400,
			[]string{"--- FAIL: TestWidgetSave (0.03s)", "    widget_test.go:42: got status 500, want 201",
				"FAIL", "FAIL\tgithub.com/acme/widgets/store\t0.412s"}, exitThenCleanup, CategoryTest},
		{"pytest in the middle", ":python: Test", "pytest -q", 300,
			[]string{"FAILED tests/test_widget.py::test_save_widget - assert 500 == 201",
				"1 failed, 212 passed in 4.20s"}, append(noiseTail(120), cleanup...), CategoryTest},
		{"jest then artifacts", ":jest: Unit", "npx jest --ci", 350,
			[]string{"● widget › saves a widget", "", "    expect(received).toBe(expected)", "",
				"    Expected: 201", "    Received: 500"}, append(noiseTail(40), cleanup...), CategoryTest},
		{"tsc error then npm epilogue", ":hammer: Build", "npm run build", 500,
			[]string{"src/render.ts(12,7): error TS2322: Type 'string' is not assignable to type 'number'."},
			append([]string{"npm ERR! code ELIFECYCLE", "npm ERR! errno 2", "npm ERR! widgets@1.0.0 build: `tsc -p .`",
				"npm ERR! Exit status 2"}, cleanup...), CategoryCompile},
		{"rust compile error under a set -x trace", ":rust: Build", "./ci/build.sh", 300,
			[]string{"error[E0425]: cannot find value `colour` in this scope", "  --> src/lib.rs:14:9",
				"   |", "14 |         colour", "   |         ^^^^^^ not found in this scope"},
			append([]string{"+ status=101", "+ echo 'build failed'", "build failed", "+ exit 101"}, cleanup...), CategoryCompile},
		{"maven test failure among INFO lines", ":java: Test", "mvn -B test", 600,
			[]string{"[ERROR] Tests run: 3, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.1 s <<< FAILURE! - in com.acme.WidgetTest",
				"[ERROR] saves(com.acme.WidgetTest)  Time elapsed: 0.05 s  <<< FAILURE!",
				"org.opentest4j.AssertionFailedError: expected: <201> but was: <500>",
				"\tat com.acme.WidgetTest.saves(WidgetTest.java:42)"},
			append(noiseTail(30), cleanup...), CategoryTest},
		{"script error then cleanup", ":database: Migrate", "./scripts/migrate.sh", 300,
			[]string{`ERROR: relation "widgets" already exists`, "migration 0042_add_widgets failed"},
			cleanup, CategoryUnknown},
		{"retries that give up", ":package: Publish", "./scripts/publish.sh", 300,
			[]string{"attempt 3 failed: connect ECONNREFUSED 10.0.0.12:443, giving up"},
			exitThenCleanup, CategoryInfrastructure},
		{"python traceback mid-log", ":python: Seed", "python manage.py seed", 250,
			[]string{"Traceback (most recent call last):", `  File "manage.py", line 22, in <module>`,
				"    main()", `  File "/app/seed.py", line 9, in main`, "    load(path)",
				"FileNotFoundError: [Errno 2] No such file or directory: 'fixtures/widgets.json'"},
			append(noiseTail(60), exitThenCleanup...), CategoryUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, at := noisy(tt.header, tt.command, tt.n, tt.fail, tt.after)
			res := analyzeString(t, log)
			if len(res.Excerpts) == 0 {
				t.Fatal("no excerpt")
			}
			e, end := res.Excerpts[0], int64(at+len(tt.fail)-1)
			if e.StartLine > end || e.EndLine < int64(at) {
				t.Errorf("first excerpt %d-%d misses the failure at lines %d-%d:\n%s\nsummary: %s",
					e.StartLine, e.EndLine, at, end, e.Text, res.Summary)
			}
			if tt.want != CategoryUnknown && res.Category != tt.want {
				t.Errorf("category = %q, want %q (summary %q)", res.Category, tt.want, res.Summary)
			}
		})
	}
}

// noiseTail is ordinary output that goes on after a failure.
func noiseTail(n int) []string {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		line := noiseLines[(i*7)%len(noiseLines)]
		if strings.Contains(line, "%") {
			args := []any{i}
			if strings.Count(line, "%") == 2 {
				args = append(args, i%1000)
			}
			line = fmt.Sprintf(line, args...)
		}
		out = append(out, line)
	}
	return out
}
