package loganalysis

import (
	"bytes"
	"regexp"
	"strings"
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
)

// failedTest recognises a line that names a failed test. It returns the test
// and a score for the line (0 when it names none).
func (s *ruleState) failedTest(ln int64, c, t []byte, f feature) (FailingTest, int) {
	if f&fFail != 0 {
		if m := reGoFail.FindSubmatch(c); m != nil {
			s.goTest, s.goAt = string(m[1]), ln
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
		if m := reJestFile.FindSubmatch(t); m != nil {
			s.jestFile = string(m[1])
		}
	}
	if f&(fFail|fError) != 0 && len(t) < 300 {
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

// ruleState is what the rules remember between lines.
type ruleState struct {
	failList   bool // inside a list of failures ("3 failing", "Failures:")
	failListAt int64
	goTest     string
	goAt       int64
	jestFile   string
	rustMsg    string
	rustLine   int64
	path       string // the last line that was only a file path (eslint)
	pathLine   int64
	shFile     string
	shLine     int
	shAt       int64
	pyFile     string
	pyLine     int
	pyAt       int64
}

// line runs the rules on one cleaned line and returns a score for it (0 when
// no rule matched). It records failing tests and error locations in a.
func (s *ruleState) line(a *analyzer, c, t []byte, f feature) int {
	ln := a.ln
	if len(t) == 0 {
		return 0
	}
	if s.failList && ln-s.failListAt > 500 {
		s.failList = false
	}
	if f&(fFail|fError) != 0 && (t[len(t)-1] == ':' || bytes.Contains(t, []byte("failing")) ||
		bytes.Contains(t, []byte("FAILURES")) || bytes.Contains(t, []byte("Failed examples"))) {
		s.failList, s.failListAt = true, ln
	}
	score := 0
	if f&(fError|fFail|fFatal|fException|fBullet|fExpect|fProblem|fTrace) == 0 && !s.failList {
		switch t[0] {
		case '-', 'F', 'r', 'I', '^':
			if !(bytes.HasPrefix(t, []byte("-->")) || bytes.HasPrefix(t, []byte("File \"")) ||
				bytes.HasPrefix(t, []byte("rspec ")) || bytes.HasPrefix(t, []byte("In ")) || t[0] == '^') {
				return 0
			}
		default:
			loc, path := firstToken(t)
			if path && f == 0 && c[0] != ' ' && len(t) < 300 {
				// A line that is only a path names the file for the eslint
				// lines below.
				s.path, s.pathLine = string(t), ln
				return 0
			}
			if !loc {
				return 0
			}
		}
	}
	if ft, sc := s.failedTest(ln, c, t, f); sc > 0 {
		ft.Name = strings.TrimSpace(ft.Name)
		a.addTest(ft)
		score = sc
	}
	if s.goTest != "" && ln-s.goAt <= 3 {
		if m := reGoTestLoc.FindSubmatch(c); m != nil {
			a.setTestLocation(s.goTest, string(m[1]), atoi(m[2]))
			s.goTest = ""
		}
	}
	if e, cat, isErr := s.diagnostic(ln, c, t); isErr {
		a.addError(e)
		a.lineVotes[cat] += 3
		if score < 3 {
			score = 3
		}
	} else if cat != 0 {
		a.lineVotes[cat]++
	}
	return score
}

// addTest records a failing test, once.
func (a *analyzer) addTest(ft FailingTest) {
	if ft.Name == "" {
		return
	}
	for _, x := range a.tests {
		if x.seg == a.seg && sameTest(x.v.Name, ft.Name) {
			return
		}
	}
	a.tests = append(a.tests, found[FailingTest]{a.seg, ft})
	if len(a.tests) > maxFound {
		a.tests = a.tests[1:]
	}
	a.lineVotes[voteTest] += 3
	a.lineNamed = true
}

// sameTest reports whether two names are the same test, one perhaps
// qualified with more of its package: "com.acme.WidgetTest.saves" and
// "WidgetTest.saves".
func sameTest(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	return a == b || strings.HasSuffix(a, b) && (a[len(a)-len(b)-1] == '.' || a[len(a)-len(b)-1] == ' ')
}

func (a *analyzer) setTestLocation(name, file string, line int) {
	for i := len(a.tests) - 1; i >= 0; i-- {
		if a.tests[i].v.Name == name && a.tests[i].v.File == "" {
			a.tests[i].v.File, a.tests[i].v.Line = file, line
			return
		}
	}
}

// addError records an error location, once.
func (a *analyzer) addError(e ErrorLocation) {
	for i := len(a.errs) - 1; i >= 0 && i >= len(a.errs)-8; i-- {
		if x := a.errs[i]; x.seg == a.seg && x.v == e {
			return
		}
	}
	a.lineNamed = true
	a.errs = append(a.errs, found[ErrorLocation]{a.seg, e})
	if len(a.errs) > maxFound {
		a.errs = a.errs[1:]
	}
}
