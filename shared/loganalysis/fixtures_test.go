package loganalysis

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixtureWant is what a fixture's analysis must show.
type fixtureWant struct {
	category Category
	exit     int // -999 when no exit status is expected
	tests    []string
	errFile  string // the first error's file, "" when none is expected
	errLine  int
	excerpt  string // text the first excerpt must contain
	section  string
}

// noExit marks a fixture whose log shows no exit status.
const noExit = -999

var fixtures = map[string]fixtureWant{
	// Compilation.
	"go_compile":            {CategoryCompile, 1, nil, "./store.go", 42, "undefined: saveWidget", ":go: Build"},
	"typescript_compile":    {CategoryCompile, 2, nil, "src/render.ts", 12, "error TS2322", ":hammer: Build"},
	"rust_compile":          {CategoryCompile, 101, nil, "src/lib.rs", 14, "error[E0425]", ":hammer: Build"},
	"maven_compile":         {CategoryCompile, 1, nil, "/home/ci/widgets/src/main/java/com/acme/Widget.java", 27, "cannot find symbol", ""},
	"kotlin_gradle_compile": {CategoryCompile, 1, nil, "/workdir/app/src/main/kotlin/com/acme/Widget.kt", 18, "Unresolved reference", ":hammer: Build"},
	"c_compile":             {CategoryCompile, 2, nil, "widget.c", 88, "undeclared", ""},
	"cpp_compile":           {CategoryCompile, 2, nil, "/workdir/src/widget.cpp", 57, "no matching function", ":cpp: Build"},
	"swift_compile":         {CategoryCompile, 1, nil, "/workdir/Sources/Widgets/Widget.swift", 31, "cannot find 'colour'", ":hammer: Build"},
	"docker_build":          {CategoryCompile, 1, nil, "", 0, "undefined: run", ":hammer: Build"},
	// Tests.
	"go_test":        {CategoryTest, 1, []string{"TestWidgetSave"}, "", 0, "--- FAIL: TestWidgetSave", ":go: Test"},
	"pytest":         {CategoryTest, 1, []string{"test_save_widget"}, "tests/test_widget.py", 9, "assert 500 == 201", ""},
	"jest":           {CategoryTest, 1, []string{"widget › saves a widget"}, "", 0, "Received: 500", ":jest: Unit tests"},
	"vitest":         {CategoryTest, 1, []string{"widget > saves a widget"}, "", 0, "expected 500 to be 201", ":hammer: Build"},
	"junit_surefire": {CategoryTest, 1, []string{"com.acme.WidgetTest.saves"}, "", 0, "expected:<201> but was:<500>", ""},
	"gradle_junit":   {CategoryTest, 1, []string{"WidgetTest.saves()"}, "", 0, "expected: <201> but was: <500>", ""},
	"rspec":          {CategoryTest, 1, []string{"Widget#save returns 201"}, "", 0, "expected: 201", ":ruby: RSpec"},
	"cargo_test":     {CategoryTest, 101, []string{"widget::saves"}, "", 0, "panicked at src/widget.rs:40:9", ":hammer: Build"},
	"phpunit":        {CategoryTest, 1, []string{`Acme\Tests\WidgetTest::testSave`}, "", 0, "Failed asserting that 500", ""},
	"tap":            {CategoryTest, 1, []string{"saves a widget"}, "", 0, "not ok 2 - saves a widget", ""},
	// Lint.
	"eslint":        {CategoryLint, 1, nil, "/workdir/src/widget.js", 11, "/workdir/src/widget.js\n  11:7", ":eslint: Lint"},
	"golangci_lint": {CategoryLint, 1, nil, "store/store.go", 42, "(errcheck)", ":golang: Lint"},
	"rubocop":       {CategoryLint, 1, nil, "lib/widget.rb", 14, "Style/StringLiterals", ""},
	"flake8":        {CategoryLint, 1, nil, "widgets/store.py", 3, "F401", ""},
	"ruff":          {CategoryLint, 1, nil, "widgets/store.py", 3, "F401", ":hammer: Build"},
	"shellcheck":    {CategoryLint, 1, nil, "scripts/deploy.sh", 7, "SC2086", ":hammer: Build"},
	"markdownlint":  {CategoryLint, 1, nil, "docs/guide.md", 78, "MD031/blanks-around-fences", ":markdown: Lint docs"},
	// Dependencies and fetching.
	"npm_dependency":     {CategoryDependency, 1, nil, "", 0, "404 Not Found", ":hammer: Build"},
	"npm10_dependency":   {CategoryDependency, 1, nil, "", 0, "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/left-padd - Not found\nnpm error 404\nnpm error 404  'left-padd@^1.3.0' is not in this registry.", ":npm: Install"},
	"pip_dependency":     {CategoryDependency, 1, nil, "", 0, "No matching distribution", ""},
	"gomod_dependency":   {CategoryDependency, 1, nil, "", 0, "unknown revision", ":hammer: Build"},
	"maven_dependency":   {CategoryDependency, 1, nil, "", 0, "Could not resolve dependencies", ""},
	"bundler_dependency": {CategoryDependency, 1, nil, "", 0, "Could not find gem", ":hammer: Build"},
	"apt_dependency":     {CategoryDependency, 100, nil, "", 0, "Unable to locate package", ":hammer: Build"},
	"docker_pull":        {CategoryDependency, 1, nil, "", 0, "manifest unknown", ":hammer: Build"},
	// Configuration, infrastructure, time and memory.
	"config_error":      {CategoryConfig, 1, nil, "", 0, "WIDGET_ENV is not set", ""},
	"command_not_found": {CategoryConfig, 2, nil, "", 0, "command not found", ":hammer: Build"},
	"timeout":           {CategoryTimeout, -15, nil, "", 0, "timed out", ":hammer: Build"},
	"oom_exit137":       {CategoryOOM, 137, nil, "", 0, "heap out of memory", ":hammer: Build"},
	"oom_killed":        {CategoryOOM, 137, nil, "", 0, "Killed", ""},
	"oomkilled_k8s":     {CategoryOOM, 1, nil, "", 0, "BackoffLimitExceeded", ":hammer: Build"},
	"lost_agent":        {CategoryInfrastructure, -1, nil, "", 0, "Agent lost", ":pipeline: Upload"},
	"disk_full":         {CategoryInfrastructure, 1, nil, "", 0, "No space left on device", ":hammer: Build"},
	// More formats: end-of-line test status, -Werror, crashes, Buildkite
	// markers in the middle of lines and progress redraws.
	"haskell_tasty":     {CategoryTest, 1, []string{"quantities"}, "", 0, "but got: Left", ""},
	"python_unittest":   {CategoryTest, 1, []string{"test_save (tests.test_widget.WidgetTest)"}, "/src/tests/test_widget.py", 12, "", ""},
	"werror_c":          {CategoryCompile, 2, nil, "", 0, "widget.c:41:9: warning: unused variable", ":c: Build"},
	"asan_crash":        {CategoryTest, 1, nil, "", 0, "AddressSanitizer: SEGV", ":test_tube: Test"},
	"buildkite_midline": {CategoryInfrastructure, 1, nil, "", 0, "Error: connect ECONNREFUSED 127.0.0.1:5432", ":test_tube: Test"},
	"buildkite_hook":    {CategoryConfig, 1, nil, "", 0, `secret "widgets/deploy-key" not found`, "Running local pre-command hook"},
	// The Buildkite agent's own reports (see buildkite_test.go).
	"bk_cancelled":    {CategoryInfrastructure, noExit, nil, "", 0, "Received cancellation signal", ":hammer: Build"},
	"bk_cancel_kill":  {CategoryInfrastructure, 137, nil, "", 0, "Received cancellation signal", ":hammer: Build"},
	"bk_timeout":      {CategoryTimeout, noExit, nil, "", 0, "Job timed out", ":test_tube: End-to-end"},
	"bk_executor":     {CategoryInfrastructure, 52, nil, "", 0, "Error setting up job executor", "Running agent environment hook"},
	"bk_hook_silent":  {CategoryConfig, 3, nil, "", 0, "pre-command hook exited with status 3", "Running local pre-command hook"},
	"bk_docker_login": {CategoryConfig, 1, nil, "", 0, "unauthorized", "Running plugin docker-login pre-command hook"},
	"bk_checkout":     {CategoryConfig, 128, nil, "", 0, "fatal: repository", "Preparing working directory"},
	// GitHub Actions and GitLab CI raw logs (see ci_formats_test.go).
	"gha_go_test":    {CategoryTest, 1, []string{"TestParseQuantity"}, "", 0, "--- FAIL: TestParseQuantity", "Run go test ./..."},
	"gha_tsc":        {CategoryCompile, 2, nil, "src/chart.ts", 14, "error TS2322", "Run npx tsc --noEmit"},
	"gitlab_npm":     {CategoryDependency, 1, nil, "", 0, "npm error code E404\nnpm error 404 Not Found", "step_script"},
	"gitlab_timeout": {CategoryTimeout, noExit, nil, "", 0, "execution took longer than", "step_script"},
	// A log that shows no failure.
	"passing": {CategoryUnknown, noExit, nil, "", 0, "ok", ":go: Test"},
}

func TestFixtures(t *testing.T) {
	eachLog(t, "testdata/*.log", fixtures, func(t *testing.T, want fixtureWant, res Result) {
		if res.Category != want.category {
			t.Errorf("category = %q, want %q (summary %q)", res.Category, want.category, res.Summary)
		}
		gotExit := noExit
		if res.ExitStatus != nil {
			gotExit = *res.ExitStatus
		}
		if gotExit != want.exit {
			t.Errorf("exit status = %d, want %d", gotExit, want.exit)
		}
		var names []string
		for _, ft := range res.FailingTests {
			names = append(names, ft.Name)
		}
		if diff := cmp.Diff(want.tests, names); diff != "" {
			t.Errorf("failing tests (-want +got):\n%s", diff)
		}
		if want.errFile != "" {
			if len(res.Errors) == 0 {
				t.Fatalf("no errors, want %s:%d", want.errFile, want.errLine)
			}
			got := [2]any{res.Errors[0].File, res.Errors[0].Line}
			if diff := cmp.Diff([2]any{want.errFile, want.errLine}, got); diff != "" {
				t.Errorf("first error (-want +got):\n%s", diff)
			}
		}
		if len(res.Excerpts) == 0 {
			t.Fatal("no excerpt")
		}
		if !strings.Contains(res.Excerpts[0].Text, want.excerpt) {
			t.Errorf("first excerpt does not contain %q:\n%s", want.excerpt, res.Excerpts[0].Text)
		}
		if res.Section != want.section {
			t.Errorf("section = %q, want %q", res.Section, want.section)
		}
	})
}

// eachLog analyzes every log matching glob in a subtest named after the
// file, checks what holds for any input (checkResult), and hands the result
// to check with the file's entry in table. Every log needs an entry, and
// every entry a log.
func eachLog[T any](t *testing.T, glob string, table map[string]T, check func(t *testing.T, want T, res Result)) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(table) {
		t.Errorf("%s matches %d logs, the table has %d", glob, len(files), len(table))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".log")
		t.Run(name, func(t *testing.T) {
			want, ok := table[name]
			if !ok {
				t.Fatalf("no expectations for %s", path)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Analyze(context.Background(), strings.NewReader(string(data)), Options{})
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			checkResult(t, data, res)
			check(t, want, res)
		})
	}
}

// checkResult checks what must hold for any input: line and byte counts,
// excerpt ranges inside the input and excerpt text matching those lines.
func checkResult(t *testing.T, data []byte, res Result) {
	t.Helper()
	wantLines := int64(strings.Count(string(data), "\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		wantLines++
	}
	if res.Lines != wantLines || res.Bytes != int64(len(data)) {
		t.Errorf("lines, bytes = %d, %d; want %d, %d", res.Lines, res.Bytes, wantLines, len(data))
	}
	for _, e := range res.Excerpts {
		if e.StartLine < 1 || e.EndLine < e.StartLine || e.EndLine > res.Lines {
			t.Errorf("excerpt %d-%d outside 1-%d", e.StartLine, e.EndLine, res.Lines)
		}
		if n := int64(strings.Count(e.Text, "\n")) + 1; n != e.EndLine-e.StartLine+1 {
			t.Errorf("excerpt %d-%d has %d lines of text", e.StartLine, e.EndLine, n)
		}
	}
	if len(res.Summary) > 200 {
		t.Errorf("summary is %d bytes long", len(res.Summary))
	}
	if res.Fingerprint == "" {
		t.Error("no fingerprint")
	}
}
