package loganalysis

import (
	"bytes"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// lineKind says what role a line plays in the structure of a CI log.
type lineKind uint8

const (
	kindText    lineKind = iota
	kindBlank            // nothing visible
	kindNoise            // CI bookkeeping that never explains a failure
	kindHeader           // a log group header: --- +++ ~~~ or ##[group]
	kindCommand          // an echoed command: "$ make test"
	kindExit             // a CI runner's "the command exited with N" line
	kindHere             // Buildkite's "^^^ +++": the failure is in this group
	kindAgent            // the CI agent's own error about the job: "🚨 Error: ..."
)

// structure classifies the cleaned line c. For headers it returns the group
// name, for commands the command, and for exit lines the status (ok false
// when the line gives none).
func structure(c []byte) (k lineKind, text []byte, status int, ok bool) {
	t := trimSpace(c)
	if len(t) == 0 {
		return kindBlank, nil, 0, false
	}
	switch t[0] {
	case '-', '+', '~':
		if len(c) >= 4 && (bytes.HasPrefix(c, []byte("--- ")) || bytes.HasPrefix(c, []byte("+++ ")) ||
			bytes.HasPrefix(c, []byte("~~~ "))) && !bytes.HasPrefix(c, []byte("--- FAIL")) &&
			!bytes.HasPrefix(c, []byte("--- PASS")) && !bytes.HasPrefix(c, []byte("--- SKIP")) {
			return kindHeader, bytes.TrimSpace(c[4:]), 0, false
		}
		if c[0] == '+' && len(c) > 1 && (c[1] == ' ' || c[1] == '+') {
			return kindNoise, nil, 0, false // a shell trace (set -x)
		}
	case '^':
		if bytes.HasPrefix(t, []byte("^^^ +++")) {
			return kindHere, nil, 0, false
		}
	case '$':
		if len(c) > 2 && c[0] == '$' && c[1] == ' ' {
			return kindCommand, bytes.TrimSpace(c[2:]), 0, false
		}
	case '#':
		if bytes.HasPrefix(c, []byte("# Exit status ")) {
			// The Buildkite agent's note after a hook or command.
			if st, ok := statusAfter(c, "Exit status "); ok {
				return kindExit, nil, st, true
			}
		}
		if len(t) > 3 && t[1] == '#' && t[2] == '[' {
			if k, text, st, ok, handled := ghaStructure(t); handled {
				return k, text, st, ok
			}
		}
	case 't':
		if bytes.HasPrefix(t, []byte("travis_")) {
			return kindNoise, nil, 0, false
		}
	case 'T':
		// Travis: The command "npm test" exited with 1.
		//         The command "x" failed and exited with 1 during .
		if bytes.HasPrefix(t, []byte(`The command "`)) {
			if i := bytes.LastIndex(t, []byte(`" `)); i > len(`The command "`) {
				if st, ok := statusAfter(t[i:], "exited with "); ok {
					return kindExit, t[len(`The command "`):i], st, true
				}
				// travis_retry gave up: The command "x" failed 3 times.
				if rest := t[i+2:]; bytes.HasPrefix(rest, []byte("failed ")) && bytes.HasSuffix(rest, []byte(" times.")) {
					return kindExit, t[len(`The command "`):i], 0, false
				}
			}
		}
	case '"':
		// The end of a Travis report whose command spans lines.
		if bytes.HasPrefix(t, []byte(`" exited with `)) || bytes.HasPrefix(t, []byte(`" failed and exited with `)) {
			if st, ok := statusAfter(t, "exited with "); ok {
				return kindExit, nil, st, true
			}
		}
	case 'E':
		if bytes.HasPrefix(t, []byte("ERROR: Job failed")) {
			k, st, ok := gitlabJobFailed(t)
			return k, nil, st, ok
		}
	case 'D':
		if bytes.HasPrefix(t, []byte("Done. Your build exited with")) {
			return kindNoise, nil, 0, false
		}
	case 0xf0:
		// Buildkite: 🚨 Error: The command exited with status 1
		if bytes.HasPrefix(t, []byte("🚨 ")) {
			st, ok := statusAfter(t, "exited with status ")
			if ok {
				return kindExit, nil, st, true
			}
			if bytes.Contains(t, []byte("interrupted by a signal")) {
				return kindExit, nil, 0, false
			}
			if bytes.HasPrefix(t, []byte("🚨 Error")) {
				return kindAgent, nil, 0, false
			}
			return kindNoise, nil, 0, false
		}
	}
	switch {
	case t[0] != 'E' && t[0] != 'u':
		// None of the reports below.
	case bytes.HasPrefix(t, []byte("Error: Process completed with exit code ")),
		bytes.HasPrefix(t, []byte("user command error: exit status ")),
		bytes.HasPrefix(t, []byte("Error: The ")) && bytes.Contains(t, []byte(" hook exited with status ")):
		st, ok := statusAfter(t, "exit code ")
		if !ok {
			st, ok = statusAfter(t, "exit status ")
		}
		if !ok {
			st, ok = statusAfter(t, "exited with status ")
		}
		return kindExit, nil, st, ok
	}
	return kindText, nil, 0, false
}

// asciiSpace marks the ASCII bytes unicode.IsSpace accepts.
var asciiSpace = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// trimSpace is bytes.TrimSpace without its slow path for the many lines that
// start or end with a character outside ASCII that is no space (a check
// mark, an emoji): only bytes.TrimSpace trims the ends that could be one.
// Every Unicode space beyond ASCII starts with 0xc2, 0xe1, 0xe2 or 0xe3.
func trimSpace(s []byte) []byte {
	lo, hi := 0, len(s)
	for lo < hi && asciiSpace[s[lo]] {
		lo++
	}
	for hi > lo && asciiSpace[s[hi-1]] {
		hi--
	}
	if lo == hi {
		return nil
	}
	if b := s[lo]; b == 0xc2 || b == 0xe1 || b == 0xe2 || b == 0xe3 {
		if r, _ := utf8.DecodeRune(s[lo:]); unicode.IsSpace(r) {
			return bytes.TrimSpace(s)
		}
	}
	if s[hi-1] >= 0x80 {
		return bytes.TrimSpace(s)
	}
	return s[lo:hi]
}

// statusAfter parses the integer that follows the first occurrence of key in
// b.
func statusAfter(b []byte, key string) (int, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	j := 0
	if j < len(b) && b[j] == '-' {
		j++
	}
	for j < len(b) && isDigit(b[j]) && j < 10 {
		j++
	}
	n, err := strconv.Atoi(string(b[:j]))
	return n, err == nil
}

// propagation reports whether the line only repeats that something failed
// further up: npm's and make's epilogues, or an exit status report.
func propagation(t []byte, f feature) bool {
	if f&(fOOM|fKilled|fTimeout|fCrash) != 0 {
		return false // says why, not only that, it failed
	}
	switch {
	case bytes.HasPrefix(t, []byte("npm ERR!")), bytes.HasPrefix(t, []byte("npm error")):
		// npm's epilogue, unless it reports a failed fetch.
		return !(bytes.Contains(t, []byte(" 404")) || bytes.Contains(t, []byte("E404")) ||
			bytes.Contains(t, []byte("ETIMEDOUT")) || bytes.Contains(t, []byte("ECONNRESET")) ||
			bytes.Contains(t, []byte("ENOTFOUND")) || bytes.Contains(t, []byte("EAI_AGAIN")) ||
			bytes.Contains(t, []byte("ETARGET")) || bytes.Contains(t, []byte("ERESOLVE")))
	case bytes.HasPrefix(t, []byte("make")) && bytes.Contains(t, []byte(": *** ")):
		return true
	case f&fFail != 0 && (bytes.Contains(t, []byte("BUILD FAIL")) || bytes.Contains(t, []byte("Build failed")) ||
		bytes.Contains(t, []byte("build failed"))):
		return true // a build tool's epilogue
	case bytes.HasPrefix(t, []byte("FAIL\t")):
		return true // go test's package summary: FAIL <package> <time>
	case bytes.HasPrefix(t, []byte("error Command failed with exit code")):
		return true
	case f&(fFail|fError|fException) != 0 && wrapperReport(t), listedName(t), runTally(t):
		return true
	// Each phrase below holds a signal word, so the features say which
	// ones are worth looking for.
	case f&fExit != 0 && (bytes.Contains(t, []byte("exit code")) || bytes.Contains(t, []byte("exit status")) ||
		bytes.Contains(t, []byte("exited with")) || bytes.Contains(t, []byte("failed with exit"))),
		f&fFail != 0 && bytes.Contains(t, []byte("with status")),
		f&fError != 0 && bytes.Contains(t, []byte("error code")),
		bytes.Contains(t, []byte("zero")) && (bytes.Contains(t, []byte("non-zero")) || bytes.Contains(t, []byte("nonzero"))):
		return true
	}
	return terse(t, f)
}

// wrapperPhrases are what test runners and build tools print after the
// failures they ran into, to say only that a task or a run failed: sbt's
// "(Test / test) sbt.TestsFailedException: Tests unsuccessful", Gradle's
// "Execution failed for task ':app:test'." and "There were failing tests",
// prove's "Result: FAIL" and "Dubious, test returned 1", rebar3's
// "Failures occurred running tests", Erlang's test server "One or more tests
// failed.", XCTest's "Test Suite 'All tests' failed at ...", xcodebuild's
// "The following build commands failed:" above the list of the commands
// whose errors it printed earlier.
var wrapperPhrases = [...]string{
	"Tests unsuccessful", "TestsFailedException", "Execution failed for task", "There were failing tests",
	"Result: FAIL", "Dubious, test returned", "Failures occurred running tests", "' failed at ",
	"One or more tests failed", "The following build commands failed",
}

// wrapperReport reports whether a line is one of wrapperPhrases.
func wrapperReport(t []byte) bool { return wrapperMatcher.in(t) }

var wrapperMatcher = newPhraseMatcher(wrapperPhrases[:]...)

// notCountedPhrases are the markers notCounted looks for anywhere in a line.
// Each starts with a byte that ordinary text holds rarely, so the matcher
// seldom has to look further: "xpected fail" finds "expected failure" and
// "Expected fail", "XPECTED FAIL" finds "EXPECTED FAILED".
var notCountedPhrases = newPhraseMatcher("XFAIL", "xfail", "XPECTED FAIL", "xpected fail", "!!! IGNORED !!!",
	"(pending)", "SKIPPED", "Test skipped", ": skipped", "' skipped (", "FLAKY, failed in")

// phraseMatcher finds any of a few phrases in a line in one pass: it looks
// only where a phrase's first byte is.
type phraseMatcher struct {
	starts [256]bool // a phrase starts with the byte
	first  [256][]string
}

func newPhraseMatcher(phrases ...string) *phraseMatcher {
	m := &phraseMatcher{}
	for _, p := range phrases {
		m.starts[p[0]] = true
		m.first[p[0]] = append(m.first[p[0]], p)
	}
	return m
}

// in reports whether t holds one of the phrases.
func (m *phraseMatcher) in(t []byte) bool {
	for i, c := range t {
		if !m.starts[c] {
			continue
		}
		for _, p := range m.first[c] {
			if len(t)-i >= len(p) && string(t[i:i+len(p)]) == p {
				return true
			}
		}
	}
	return false
}

// notCounted reports whether a test runner says that what a line reports
// does not count as a failure: a skipped, pending, ignored or inconclusive
// test, an expected failure, a flaky test that passed on a retry, or a TAP
// test with a TODO or SKIP directive. The markers are the runners'
// documented ones: TAP "not ok 3 - x # TODO ...", pytest and PHP's
// run-tests "XFAIL", "SKIP"/"SKIPPED", ScalaTest "!!! IGNORED !!!" and
// "(pending)", Pester "[!]" (skipped) and "[?]" (inconclusive), dotnet test
// "Skipped Name", XCTest "Test skipped", Bazel "FLAKY, failed in 1 out of 2".
func notCounted(t []byte) bool {
	if len(t) < 4 {
		return false
	}
	switch {
	case bytes.HasPrefix(t, []byte("[!] ")), bytes.HasPrefix(t, []byte("[?] ")), bytes.HasPrefix(t, []byte("[+] ")),
		bytes.HasPrefix(t, []byte("SKIP")), bytes.HasPrefix(t, []byte("XFAIL")), bytes.HasPrefix(t, []byte("Skipped ")):
		return true
	case bytes.HasPrefix(t, []byte("not ok")):
		if i := bytes.IndexByte(t, '#'); i > 0 {
			d := bytes.TrimSpace(t[i+1:])
			return hasPrefixFold(d, "todo") || hasPrefixFold(d, "skip")
		}
		return false
	}
	return notCountedPhrases.in(t)
}

// levelPrefix returns the length of a bracketed log level that starts a
// line, with the one space after it, or 0: "[info] ", "[error] ", "[WARNING] "
// (sbt, Maven).
func levelPrefix(t []byte) int {
	if len(t) < 6 || t[0] != '[' {
		return 0
	}
	i := bytes.IndexByte(t[:min(len(t), 12)], ']')
	if i < 3 || i+1 >= len(t) || t[i+1] != ' ' {
		return 0
	}
	for _, l := range [...]string{"info", "error", "warn", "warning", "debug", "success"} {
		if eqFold(t[1:i], l) {
			return i + 2
		}
	}
	return 0
}

// runTally reports whether a line is sbt's count of a test run's results,
// "[error] Failed: Total 735, Failed 2, Errors 0, Passed 733, Ignored 162"
// ("Passed: Total ..." when all passed, "Error: Total ..." when a suite
// could not run): it counts the failures reported above it.
func runTally(t []byte) bool {
	t = t[levelPrefix(t):]
	return bytes.HasPrefix(t, []byte("Failed: Total ")) || bytes.HasPrefix(t, []byte("Error: Total "))
}

// listedName reports whether a line is only a log level and one name, as
// in a list of failed suites ("[error] 	com.acme.WidgetSpec"): it names
// what failed but does not explain it.
func listedName(t []byte) bool {
	n := levelPrefix(t)
	if n == 0 {
		return false
	}
	r := bytes.TrimSpace(t[n:])
	return len(r) > 0 && !bytes.ContainsAny(r, " \t:")
}

// progressLine reports whether a line starts with a build tool's progress
// counter, "[ 42 of 147] Compiling Text.Pandoc.Error" (GHC) or
// "[12/40] Building CXX object src/error.cc.o" (Ninja, CMake): it names what
// is being built, and a name is not a failure.
func progressLine(t []byte) bool {
	if len(t) < 6 || t[0] != '[' {
		return false
	}
	i := 1
	for i < len(t) && t[i] == ' ' {
		i++
	}
	n := digits(t[i:])
	if n == 0 {
		return false
	}
	i += n
	switch {
	case bytes.HasPrefix(t[i:], []byte(" of ")):
		i += 4
	case i < len(t) && t[i] == '/':
		i++
	default:
		return false
	}
	n = digits(t[i:])
	return n > 0 && i+n+1 < len(t) && t[i+n] == ']' && t[i+n+1] == ' '
}

// skipHeading reports whether a line heads a list of tests that were
// skipped or are pending, whose indented items do not count as failures:
// "Skipped:" (Vim's test summary), "Pending: (Failures listed here are
// expected and do not affect your suite's status)" (RSpec), "SKIPPED
// tests:".
func skipHeading(t []byte) bool {
	t = bytes.TrimSpace(t)
	if !(hasPrefixFold(t, "skipped") || hasPrefixFold(t, "pending")) {
		return false
	}
	return t[len(t)-1] == ':' || bytes.Contains(t, []byte("do not affect your suite"))
}

// terse reports whether a line only announces that something failed, with
// at most two other words: "*** Failed ***", "TEST FAILURE", "Failures:",
// "rake aborted!". Such lines head or close a failure; they do not explain it.
func terse(t []byte, f feature) bool {
	if f&^(fError|fFail|fAbort|fLead|fIssue) != 0 || len(t) > 80 {
		return false
	}
	if i := bytes.IndexByte(t, ':'); i >= 0 && len(bytes.TrimSpace(t[i+1:])) > 0 {
		return false // "Error: what went wrong"
	}
	words := 0
	for i := 0; i < len(t); {
		if !isLetter(t[i]) {
			i++
			continue
		}
		j := i
		for j < len(t) && isLetter(t[j]) {
			j++
		}
		if j-i >= 2 && wordFeature(t[i:j], t[j:]) == 0 {
			words++
		}
		i = j
	}
	return words <= 2
}

// exitStatusIn finds a process exit status reported in an ordinary output
// line ("exit status 2", "exit code 137", "exited with status -1").
func exitStatusIn(t []byte) (int, bool) {
	for _, key := range [...]string{"exit status ", "exit code ", "exited with status ", "exited with code "} {
		if st, ok := statusAfter(t, key); ok {
			return st, true
		}
	}
	return 0, false
}

// passed reports whether a line reports something that went well, whatever
// its words: "error handling test ... ok", "✓ shows an error", "PASSED x".
func passed(t []byte) bool {
	for _, p := range [...]string{"✓", "✔", "ok ", "PASS ", "PASSED ", "--- PASS", "[       OK ]", "[  PASSED  ]"} {
		if bytes.HasPrefix(t, []byte(p)) {
			return true
		}
	}
	t = bytes.TrimRight(t, " \t")
	// A runner's timing at the end: "(0.02s)", "(12 ms)".
	if n := len(t); n > 0 && t[n-1] == ')' {
		if i := bytes.LastIndexByte(t, '('); i > 0 && n-i < 16 && digits(t[i+1:]) > 0 {
			t = bytes.TrimRight(t[:i], " \t")
		}
	}
	for _, s := range [...]string{"... ok", "... OK", "... passed", " PASSED", " ✓", " ✔"} {
		if bytes.HasSuffix(t, []byte(s)) {
			return true
		}
	}
	// A status in a column of its own: "name:      OK", "name  PASS".
	for _, s := range [...]string{"OK", "ok", "PASS"} {
		if bytes.HasSuffix(t, []byte(s)) {
			r := t[:len(t)-len(s)]
			if bytes.HasSuffix(r, []byte(": ")) || bytes.HasSuffix(r, []byte("  ")) || bytes.HasSuffix(r, []byte("\t")) {
				return true
			}
		}
	}
	return false
}

// retried reports whether a line says that what failed will be tried again:
// "retrying", "will retry", "trying again".
func retried(t []byte) bool { return features(t)&fRetry != 0 }

// infoLevel reports whether a log line is marked as information or debug
// output, which reports rather than fails: "info ...", "[INFO] ...",
// "DEBUG: ...".
func infoLevel(t []byte) bool {
	t = bytes.TrimPrefix(t, []byte("["))
	for _, p := range [...]string{"info", "debug", "verbose", "notice", "trace"} {
		if hasPrefixFold(t, p) && len(t) > len(p) {
			switch t[len(p)] {
			case ' ', ':', ']', '\t':
				return true
			}
		}
	}
	return false
}
