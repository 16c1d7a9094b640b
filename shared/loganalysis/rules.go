package loganalysis

import (
	"bytes"
	"strings"
)

// ruleState is what the rules remember between lines.
type ruleState struct {
	failList   bool // inside a list of failures ("3 failing", "Failures:")
	failListAt int64
	goTest     string
	goAt       int64
	goRun      []byte // the test go test -v said it runs ("=== RUN", "=== CONT")
	standardAt int64  // the line of JavaScript Standard Style's header, or 0
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
	// xcpretty: the line in hand started with its error symbol, which it
	// prints before a compiler's "path:12:5: message" ("error:" dropped).
	xcError bool
}

// xcprettyError is the symbol xcpretty prints before an error.
const xcprettyError = "❌"

// line runs the rules on one cleaned line and returns a score for it (0 when
// no rule matched). It records failing tests and error locations in a.
func (s *ruleState) line(a *analyzer, c, t []byte, f feature) int {
	ln := a.ln
	if len(t) == 0 {
		return 0
	}
	s.xcError = f&fMark != 0 && bytes.HasPrefix(t, []byte(xcprettyError))
	if s.xcError {
		t = trimIndent(t[len(xcprettyError):])
		if len(t) == 0 {
			return 0
		}
		c = t
	}
	if t[0] == '=' && bytes.HasPrefix(t, []byte("=== ")) {
		// go test -v: the output that follows is this test's. The name
		// is kept in a reused buffer: these lines are many.
		s.goRun = append(s.goRun[:0], goRunName(t)...)
		return 0
	}
	if (t[0] == 's' || t[0] == 't') && standardHeader(t) {
		s.standardAt = ln // its findings follow, indented
		a.lineVotes[voteLint]++
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
	if t[0] == '#' || t[0] == ':' {
		if e, hasLoc, level := annotation(t); level == 2 {
			// A GitHub Actions error annotation is a strong error line.
			if hasLoc && !a.hasErrorAt(e) {
				a.addError(e)
			}
			return 3
		}
	}
	if t[0] == '[' && bytes.HasPrefix(t, []byte("[-] ")) {
		// Pester: "[-] saves the widget 20ms (18ms|2ms)" names a failed test.
		a.addTest(FailingTest{Name: pesterName(t[4:])})
		return 4
	}
	if f&(fError|fFail|fFatal|fException|fBullet|fExpect|fProblem|fTrace) == 0 && !s.failList {
		switch t[0] {
		case '-', 'F', 'r', 'I', '^':
			if !(bytes.HasPrefix(t, []byte("-->")) || bytes.HasPrefix(t, []byte("File \"")) ||
				bytes.HasPrefix(t, []byte("rspec ")) || bytes.HasPrefix(t, []byte("In ")) || t[0] == '^') {
				return 0
			}
		default:
			loc, path, label := firstToken(t)
			if path && f == 0 && c[0] != ' ' && len(t) < 300 {
				// A line that is only a path names the file for the eslint
				// lines below.
				s.path, s.pathLine = string(t), ln
				return 0
			}
			// markdownlint's report: the file and a colon, then the
			// line: "a.md: 3: MD010/no-hard-tabs Hard tabs".
			if !loc && !(label && bytes.Contains(t, []byte(": MD"))) {
				return 0
			}
		}
	}
	if ft, sc := s.failedTest(a, ln, c, t, f); sc > 0 {
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

// hasErrorAt reports whether an error at e's file, line and column was
// recorded lately in this segment: a GitHub Actions annotation repeats the
// error the tool printed just above it.
func (a *analyzer) hasErrorAt(e ErrorLocation) bool {
	for i := len(a.errs) - 1; i >= 0 && i >= len(a.errs)-8; i-- {
		if x := a.errs[i]; x.seg == a.seg && x.v.File == e.File && x.v.Line == e.Line && x.v.Column == e.Column {
			return true
		}
	}
	return false
}

// pesterName drops the timing Pester prints after a test's name:
// "saves the widget 20ms (18ms|2ms)".
func pesterName(t []byte) string {
	t = bytes.TrimSpace(t)
	if i := bytes.LastIndex(t, []byte(" (")); i > 0 && bytes.HasSuffix(t, []byte(")")) {
		t = t[:i]
	}
	if i := bytes.LastIndexByte(t, ' '); i > 0 && bytes.HasSuffix(t, []byte("ms")) && digits(t[i+1:]) > 0 {
		t = t[:i]
	}
	return string(t)
}

// markGoTest marks the candidates printed while go test -v ran the test
// name as naming a failing test: with parallel tests, a test's output comes
// long before its "--- FAIL" line, and it is the cause.
func (a *analyzer) markGoTest(name string) {
	mark := func(c *cluster) {
		if c != nil && c.goTest == name && !c.named {
			c.named = true
			c.specific++
			c.keep += namedKeep
		}
	}
	for _, c := range a.clusters {
		mark(c)
	}
	mark(a.open)
}

// goRunName returns the test that a go test -v line says runs from now on
// ("=== RUN   TestX/case", "=== CONT  TestX", "=== NAME  TestX"), or nil
// ("=== PAUSE TestX" and others).
func goRunName(t []byte) []byte {
	t = t[len("=== "):]
	for _, v := range [...]string{"RUN ", "CONT ", "NAME "} {
		if bytes.HasPrefix(t, []byte(v)) {
			t = trimIndent(t[len(v):])
			if i := bytes.IndexByte(t, ' '); i >= 0 {
				t = t[:i]
			}
			return t
		}
	}
	return nil
}

// standardHeader reports whether a line is JavaScript Standard Style's
// header: "standard: Use JavaScript Standard Style (https://standardjs.com)"
// (or semistandard's, ts-standard's).
func standardHeader(t []byte) bool {
	i := bytes.Index(t[:min(len(t), 16)], []byte("standard: "))
	return i >= 0 && bytes.HasPrefix(t[i+len("standard: "):], []byte("Use JavaScript Standard Style"))
}
