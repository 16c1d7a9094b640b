package loganalysis

import (
	"bytes"
	"regexp"
)

// Test runner reports of failed tests.
var (
	reGoFail      = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)
	reGoTestLoc   = regexp.MustCompile(`^\s+([\w./-]+_test\.go):(\d+): `)
	rePytestFail  = regexp.MustCompile(`^FAILED (\S+?\.py)::(\S+)`)
	rePytestBar   = regexp.MustCompile(`^_{3,} (\S.*?) _{3,}$`)
	reJest        = regexp.MustCompile(`^\s*● (.+)$`)
	reSurefire    = regexp.MustCompile(`^(?:\[ERROR\]\s+)?(\w+)\(([\w.$]+)\)\s+Time elapsed:.*<<<\s*(?:FAILURE|ERROR)!`)
	reSurefire5   = regexp.MustCompile(`^\[ERROR\]\s+([\w.$]+)\.(\w+)\s+Time elapsed:.*<<<\s*(?:FAILURE|ERROR)!`)
	reSurefireSum = regexp.MustCompile(`^\s*(?:\[ERROR\]\s+)?([A-Z][\w$]*(?:\.[A-Z][\w$]*)*)\.(\w+):(\d+)\s`)
	reGradle      = regexp.MustCompile(`^(\S+) > (.+?) FAILED$`)
	reRSpec       = regexp.MustCompile(`^rspec (\./\S+?):(\d+) # (.*)$`)
	reCargo       = regexp.MustCompile(`^test (\S+) \.\.\. FAILED$`)
	reNumbered    = regexp.MustCompile(`^\s*\d+\) (.+?):?\s*$`)
	reTAP         = regexp.MustCompile(`^not ok \d+\s*(?:- )?(.*?)(?:\s+#.*)?$`)
	reScalaTest   = regexp.MustCompile(`^(?:\[info\]\s+)?- (.+?) \*\*\* FAILED \*\*\*`)
	reMinitest    = regexp.MustCompile(`^([A-Z]\w*(?:::\w+)*#\S.*?) \[(.+?):(\d+)\]:?$`)
	reXUnit       = regexp.MustCompile(`^\s*(\S+) \[FAIL\]$`)
	reJestFile    = regexp.MustCompile(`^FAIL (\S+\.\w+)`)
	// "  name: FAIL (0.06s)", "test_x (mod.T) ... FAIL", "  name     FAILED": a
	// runner's status at the end of a test's line.
	reStatusEnd = regexp.MustCompile(`^(?:\s+(\S.*?)(?::|\s\.{3}|\s{2,})|(\S.*?)(?:\s\.{3}|\s{2,}))\s*(?:FAIL|FAILED)(?:\s+\([\d.]+\s?m?s\))?\s*$`)
	reVitest    = regexp.MustCompile(`^FAIL\s+(\S+\.\w+) > (.+)$`)
	// XCTest: "/src/WidgetTests.swift:31: error: -[Widgets.WidgetTests testSave] : XCTAssertEqual failed".
	reXCTest = regexp.MustCompile(`^(\S+?):(\d+): error: -\[(\S+) (\w+)\] : `)
	// Erlang's test server: "inet_SUITE:t_gethostnative failed on line 696".
	reErlangCase = regexp.MustCompile(`^(\w+_SUITE):(\w+) failed on line (\d+)$`)
)

// failedTest recognises a line that names a failed test. It returns the test
// and a score for the line (0 when it names none).
func (s *ruleState) failedTest(a *analyzer, ln int64, c, t []byte, f feature) (FailingTest, int) {
	if f&fFail != 0 {
		if m := reGoFail.FindSubmatch(c); m != nil {
			s.goTest, s.goAt = string(m[1]), ln
			a.markGoTest(string(m[1]))
			return FailingTest{Name: string(m[1])}, 4
		}
		if m := rePytestFail.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[2]), File: string(m[1])}, 3
		}
		if m := reSurefire.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[2]) + "." + string(m[1])}, 4
		}
		if m := reSurefire5.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1]) + "." + string(m[2])}, 4
		}
		if m := reGradle.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1]) + "." + string(m[2])}, 4
		}
		if m := reCargo.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1])}, 4
		}
		if m := reTAP.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1])}, 3
		}
		if m := reScalaTest.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1])}, 4
		}
		if m := reXUnit.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1])}, 4
		}
		if m := reVitest.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[2]), File: string(m[1])}, 4
		}
		if m := reErlangCase.FindSubmatch(t); m != nil {
			// A suite is the module in <suite>.erl.
			return FailingTest{Name: string(m[1]) + ":" + string(m[2]), File: string(m[1]) + ".erl", Line: atoi(m[3])}, 4
		}
		if m := reJestFile.FindSubmatch(t); m != nil {
			s.jestFile = string(m[1])
		}
	}
	if f&fError != 0 && bytes.Contains(t, []byte(": error: -[")) {
		if m := reXCTest.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[3]) + "." + string(m[4]), File: string(m[1]), Line: atoi(m[2])}, 4
		}
	}
	if f&(fFail|fError) != 0 && len(t) < 300 && endsWithFail(t) {
		if m := reStatusEnd.FindSubmatch(c); m != nil {
			name := m[1]
			if len(name) == 0 {
				name = m[2]
			}
			if !bytes.HasPrefix(name, []byte("---")) {
				return FailingTest{Name: string(bytes.TrimSpace(name))}, 4
			}
		}
	}
	if f&fBullet != 0 {
		if m := reJest.FindSubmatch(t); m != nil && !bytes.HasPrefix(m[1], []byte("Console")) {
			return FailingTest{Name: string(m[1]), File: s.jestFile}, 3
		}
	}
	if f&fExpect != 0 || s.failList {
		if m := reSurefireSum.FindSubmatch(c); m != nil {
			return FailingTest{Name: string(m[1]) + "." + string(m[2]), Line: atoi(m[3])}, 3
		}
	}
	switch {
	case len(t) > 6 && t[0] == 'r' && bytes.HasPrefix(t, []byte("rspec ./")):
		if m := reRSpec.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[3]), File: string(m[1]), Line: atoi(m[2])}, 3
		}
	case s.failList && len(t) > 0 && isDigit(t[0]):
		if m := reNumbered.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1])}, 3
		}
	case s.failList && len(t) > 0 && t[0] == '_':
		if m := rePytestBar.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1])}, 3
		}
	case s.failList && len(t) > 0 && isUpper(t[0]) && bytes.IndexByte(t, '#') > 0:
		if m := reMinitest.FindSubmatch(t); m != nil {
			return FailingTest{Name: string(m[1]), File: string(m[2]), Line: atoi(m[3])}, 3
		}
	}
	return FailingTest{}, 0
}

// endsWithFail is a cheap test for what reStatusEnd needs: the line ends
// with FAIL or FAILED, perhaps followed by a time in parentheses.
func endsWithFail(t []byte) bool {
	t = bytes.TrimRight(t, " \t")
	if n := len(t); n > 0 && t[n-1] == ')' {
		if i := bytes.LastIndexByte(t, '('); i >= 0 {
			t = bytes.TrimRight(t[:i], " \t")
		}
	}
	return bytes.HasSuffix(t, []byte("FAIL")) || bytes.HasSuffix(t, []byte("FAILED"))
}
