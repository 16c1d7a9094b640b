package loganalysis

import "testing"

// TestOrdinaryMarkers checks the markers of output that is not a failure:
// tests that do not count, build progress, wrapper reports and lists of
// names.
func TestOrdinaryMarkers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line                                string
		notCounted, progress, wrapper, list bool
	}{
		{line: "not ok 3 - renders the legacy layout # TODO not ported", notCounted: true},
		{line: "not ok 4 - uploads # skip no network", notCounted: true},
		{line: "not ok 5 - saves a widget"},
		{line: "XFAIL widget_render() [ext/widget/tests/004.phpt]", notCounted: true},
		{line: "tests/test_a.py::test_b XFAIL", notCounted: true},
		{line: "SKIP widget on Windows [ext/widget/tests/002.phpt] reason: only for Windows", notCounted: true},
		{line: "[info] - should render offline !!! IGNORED !!!", notCounted: true},
		{line: "[info] - should upload (pending)", notCounted: true},
		{line: "[!] reads from the network 3ms (0ms|3ms)", notCounted: true},
		{line: "[-] saves the widget 20ms (18ms|2ms)"},
		{line: "Skipped Widgets.Tests.WidgetTests.RendersOffline [1 ms]", notCounted: true},
		{line: "//widgets:flaky_test    FLAKY, failed in 1 out of 2 in 0.3s", notCounted: true},
		{line: "FAIL widget_save() rejects an empty name [ext/widget/tests/005.phpt]"},
		{line: "[ 42 of 147] Compiling Text.Pandoc.Error ( src/Text/Pandoc/Error.hs, x.o )", progress: true},
		{line: "[12/40] Building CXX object src/CMakeFiles/w.dir/error.cc.o", progress: true},
		{line: "[error] 12 errors"},
		{line: "[error] (Test / test) sbt.TestsFailedException: Tests unsuccessful", wrapper: true},
		{line: "Execution failed for task ':app:test'.", wrapper: true},
		{line: "One or more tests failed.", wrapper: true},
		{line: "error: cannot find symbol", wrapper: false},
		{line: "[error] \tcom.acme.WidgetSpec", list: true},
		{line: "[error] cannot find symbol"},
	}
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"[error] Total time: 14 s, completed Nov 20, 2026, 10:00:15 AM", true},
		{"[INFO] Total time:  12.345 s", true},
		{"Total time: 3s", true},
		{"[error] Total of 3 errors", false},
	} {
		if got := timingLine([]byte(tt.line)); got != tt.want {
			t.Errorf("timingLine(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
	for _, tt := range tests {
		b := []byte(tt.line)
		got := [4]bool{notCounted(b), progressLine(b), wrapperReport(b), listedName(b)}
		want := [4]bool{tt.notCounted, tt.progress, tt.wrapper, tt.list}
		if got != want {
			t.Errorf("%q: notCounted, progress, wrapper, list = %v, want %v", tt.line, got, want)
		}
	}
}

// TestSkippedList checks that the items under a heading of skipped tests
// are not taken for the failure that follows them.
func TestSkippedList(t *testing.T) {
	t.Parallel()
	log := "$ make test\n" +
		"Skipped:\n" +
		"\ttest_gui.vim: cannot run GUI\n" +
		"\ttest_python3.vim: python3 feature missing\n" +
		"\n" +
		"Executed:  2134 Tests\n" +
		"\n" +
		"Failures:\n" +
		"\tFrom test_terminal.vim:\n" +
		"\tFound errors in Test_terminal_no_job():\n" +
		"\tline 1: Expected v:null but got process 1383\n" +
		"\n" +
		"TEST FAILURE\n" +
		"make: *** [test] Error 1\n"
	res := analyzeString(t, log)
	if len(res.Excerpts) == 0 {
		t.Fatal("no excerpt")
	}
	x := res.Excerpts[0]
	if x.StartLine < 8 || x.StartLine > 9 || x.EndLine < 11 {
		t.Errorf("excerpt %d-%d, want it to start at the failures (8 or 9) and hold line 11:\n%s", x.StartLine, x.EndLine, x.Text)
	}
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"Skipped:", true},
		{"Pending: (Failures listed here are expected and do not affect your suite's status)", true},
		{"SKIPPED tests:", true},
		{"Skipped 3 tests", false},
		{"Failures:", false},
	} {
		if got := skipHeading([]byte(tt.line)); got != tt.want {
			t.Errorf("skipHeading(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// TestDedentEndsBlock checks that an indented line left of the failure's
// own indent ends the failure's block.
func TestDedentEndsBlock(t *testing.T) {
	t.Parallel()
	log := "$ dotnet xunit\n" +
		"      Widgets.Tests.WidgetTests.SavesToStore [FAIL]\n" +
		"        Assert.Equal() Failure\n" +
		"        Expected: 201\n" +
		"        Actual:   500\n" +
		"  Finished:    Widgets.Tests\n" +
		"=== TEST EXECUTION SUMMARY ===\n" +
		"   Widgets.Tests  Total: 12, Errors: 0, Failed: 1, Skipped: 0, Time: 0.412s\n"
	res := analyzeString(t, log)
	if len(res.Excerpts) == 0 {
		t.Fatal("no excerpt")
	}
	if x := res.Excerpts[0]; x.StartLine != 2 || x.EndLine != 5 {
		t.Errorf("excerpt %d-%d, want 2-5:\n%s", x.StartLine, x.EndLine, x.Text)
	}
}

// TestVoteCommand checks that a command naming a linter votes for lint and
// that a test runner's options do not.
func TestVoteCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		command, section string
		lint             bool
	}{
		{"npm run lint", "", true},
		{"bundle exec rubocop", "", true},
		{"awesome_bot README.md --allow-ssl", "", true},
		{"make check", ":broom: Lint", true},
		{"bundle exec rspec --format progress", "", false},
		{"go test -json ./...", ":go: Test", false},
		{"npm test", "", false},
	} {
		var votes [numVotes]int
		voteCommand(&votes, tt.command, tt.section)
		if got := votes[voteLint] > 0; got != tt.lint {
			t.Errorf("voteCommand(%q, %q): lint = %v, want %v", tt.command, tt.section, got, tt.lint)
		}
	}
}
