package loganalysis

import (
	"bytes"
	"regexp"
	"strconv"
)

// Compiler and linter diagnostics. These run only on lines that already look
// like a diagnostic, never on every line.
var (
	// a.go:3:7: msg | a.c:3:7: error: msg | a.rb:3:7: C: msg | a.py:3:7: E501 msg
	reFileLineCol = regexp.MustCompile(`^\s*((?:[A-Za-z]:)?[\w./\\@+~-]*\.[A-Za-z0-9]{1,6}):(\d+)(?::(\d+))?:?\s+(.*)$`)
	// a.ts(3,7): error TS2304: msg | A.cs(3,7): error CS0103: msg
	reParenLoc = regexp.MustCompile(`^\s*([\w./\\@+~-]+\.[A-Za-z0-9]{1,6})\((\d+),(\d+)\):\s*((?:fatal )?error.*)$`)
	// a.ts:3:7 - error TS2304: msg
	reDashLoc = regexp.MustCompile(`^\s*([\w./\\@+~-]+\.[A-Za-z0-9]{1,6}):(\d+):(\d+) - (error.*)$`)
	// [ERROR] /p/A.java:[3,7] msg
	reMavenLoc = regexp.MustCompile(`^\[ERROR\]\s+(\S+\.\w+):\[(\d+),(\d+)\]\s*(.*)$`)
	// e: file:///p/a.kt:3:7 msg | e: /p/a.kt: (3, 7): msg
	reKotlin = regexp.MustCompile(`^e: (?:file://)?(\S+\.kts?):(?: \()?(\d+)(?::|, )(\d+)\)?:? (.*)$`)
	// error[E0425]: msg (the location follows on a "-->" line)
	reRustErr = regexp.MustCompile(`^error(?:\[E\d+\])?: (.*)$`)
	reRustLoc = regexp.MustCompile(`^\s*--> (\S+?):(\d+):(\d+)`)
	// eslint, under a line naming the file: "  3:7  error  msg  rule"
	reESLint = regexp.MustCompile(`^\s+(\d+):(\d+)\s+error\s+(.*?)\s*$`)
	// shellcheck: "In a.sh line 3:" then "  ^-- SC2086 (info): msg"
	reShellIn = regexp.MustCompile(`^In (\S+) line (\d+):$`)
	reShellSC = regexp.MustCompile(`^\s*\^[-^\s]*(SC\d+)(?: \(\w+\))?: (.*)$`)
	// Python: File "a.py", line 3, in f ... ValueError: msg
	rePyFile = regexp.MustCompile(`^\s*File "([^"]+)", line (\d+)`)
	rePyExc  = regexp.MustCompile(`^(?:E\s+)?([A-Za-z_][\w.]*(?:Error|Exception)): (.*)$`)
	// markdownlint: "a.md: 3: MD010/no-hard-tabs Hard tabs [Column: 19]"
	// (the library's report), "a.md:3:19 MD010/no-hard-tabs Hard tabs"
	// (markdownlint-cli).
	reMarkdownlint = regexp.MustCompile(`^(\S+?):\s?(\d+)(?::(\d+))?:? (MD\d{3}(?:/[\w-]+)*) (.*)$`)
	// Ruby, an uncaught exception: a.rb:3:in 'f': msg (NameError), or
	// a.rb:3:in `f': msg (NameError) before Ruby 3.4
	reRubyCrash = regexp.MustCompile("^((?:[A-Za-z]:)?[\\w./\\\\@+~-]*\\.[A-Za-z0-9]{1,6}):(\\d+):in [`'][^`']*': (.*) \\(([A-Z][\\w:]*)\\)$")
)

// tokenByte marks the bytes locationLike and firstToken look at in a first
// word: the blanks that end it and the punctuation of a path and a line.
var tokenByte = [256]bool{' ': true, '\t': true, '.': true, ':': true, '/': true}

// locationLike is a cheap test for "path.ext:12": a first word with a dot,
// then a colon and a digit.
func locationLike(t []byte) bool {
	dot := false
	for i := 0; i < len(t) && i < 300; i++ {
		if !tokenByte[t[i]] {
			continue
		}
		switch t[i] {
		case ' ', '\t':
			return false
		case '.':
			dot = true
		case ':':
			if i+1 < len(t) && isDigit(t[i+1]) {
				return dot && i > 0
			}
			if i+1 < len(t) && (t[i+1] == '/' || t[i+1] == '\\') {
				continue // C:\ or scheme://
			}
			return false
		}
	}
	return false
}

// firstToken looks at the text up to the first space: loc reports whether
// it is "path.ext:12" (as locationLike), path whether it is the whole line
// and looks like a file path (a dot and a slash), label whether it ends with
// a colon and a number follows ("a.md: 3: ...").
func firstToken(t []byte) (loc, path, label bool) {
	dot, slash := false, false
	for i := 0; i < len(t) && i < 300; i++ {
		if !tokenByte[t[i]] {
			continue
		}
		switch t[i] {
		case ' ', '\t':
			return false, false, i > 1 && t[i-1] == ':' && i+1 < len(t) && isDigit(t[i+1])
		case '.':
			dot = true
		case '/':
			slash = true
		case ':':
			if i+1 < len(t) && isDigit(t[i+1]) && dot && i > 0 {
				return true, false, false
			}
		}
	}
	return false, dot && slash && len(t) < 300, false
}

func atoi(b []byte) int {
	n, _ := strconv.Atoi(string(b))
	return n
}

// diagnostic extracts a compiler or linter error location from one line.
// It returns the location, the category it suggests and whether it is an
// error (rather than a warning or note).
func (s *ruleState) diagnostic(ln int64, c, t []byte) (ErrorLocation, int, bool) {
	if bytes.Contains(t, []byte(" MD")) {
		if m := reMarkdownlint.FindSubmatch(t); m != nil {
			return ErrorLocation{File: string(m[1]), Line: atoi(m[2]), Column: atoi(m[3]),
				Message: string(m[4]) + " " + msg(m[5])}, voteLint, true
		}
	}
	if bytes.Contains(t, []byte("): ")) {
		if m := reParenLoc.FindSubmatch(t); m != nil {
			return ErrorLocation{File: string(m[1]), Line: atoi(m[2]), Column: atoi(m[3]), Message: msg(m[4])}, voteCompile, true
		}
	}
	if bytes.Contains(t, []byte(" - error")) {
		if m := reDashLoc.FindSubmatch(t); m != nil {
			return ErrorLocation{File: string(m[1]), Line: atoi(m[2]), Column: atoi(m[3]), Message: msg(m[4])}, voteCompile, true
		}
	}
	if bytes.HasPrefix(t, []byte("[ERROR]")) {
		if m := reMavenLoc.FindSubmatch(t); m != nil {
			return ErrorLocation{File: string(m[1]), Line: atoi(m[2]), Column: atoi(m[3]), Message: msg(m[4])}, voteCompile, true
		}
	}
	if bytes.HasPrefix(t, []byte("e: ")) {
		if m := reKotlin.FindSubmatch(t); m != nil {
			return ErrorLocation{File: string(m[1]), Line: atoi(m[2]), Column: atoi(m[3]), Message: msg(m[4])}, voteCompile, true
		}
	}
	if bytes.HasPrefix(t, []byte("error")) {
		if m := reRustErr.FindSubmatch(t); m != nil {
			s.rustMsg, s.rustLine = msg(m[1]), ln
			return ErrorLocation{}, voteCompile, false
		}
	}
	if s.rustMsg != "" && bytes.HasPrefix(t, []byte("-->")) {
		if m := reRustLoc.FindSubmatch(t); m != nil && ln-s.rustLine <= 4 {
			e := ErrorLocation{File: string(m[1]), Line: atoi(m[2]), Column: atoi(m[3]), Message: s.rustMsg}
			s.rustMsg = ""
			return e, voteCompile, true
		}
	}
	if s.path != "" && c[0] == ' ' && isDigit(t[0]) {
		if m := reESLint.FindSubmatch(c); m != nil && ln-s.pathLine <= 200 {
			return ErrorLocation{File: s.path, Line: atoi(m[1]), Column: atoi(m[2]), Message: msg(m[3])}, voteLint, true
		}
	}
	if bytes.HasPrefix(t, []byte("In ")) {
		if m := reShellIn.FindSubmatch(t); m != nil {
			s.shFile, s.shLine, s.shAt = string(m[1]), atoi(m[2]), ln
			return ErrorLocation{}, voteLint, false
		}
	}
	if s.shFile != "" && t[0] == '^' {
		if m := reShellSC.FindSubmatch(t); m != nil && ln-s.shAt <= 10 {
			return ErrorLocation{File: s.shFile, Line: s.shLine, Message: string(m[1]) + ": " + msg(m[2])}, voteLint, true
		}
	}
	if bytes.HasPrefix(t, []byte("File \"")) {
		if m := rePyFile.FindSubmatch(t); m != nil {
			s.pyFile, s.pyLine, s.pyAt = string(m[1]), atoi(m[2]), ln
			return ErrorLocation{}, voteCrash, false
		}
	}
	if s.pyFile != "" {
		if m := rePyExc.FindSubmatch(t); m != nil && ln-s.pyAt <= 20 {
			e := ErrorLocation{File: s.pyFile, Line: s.pyLine, Message: string(m[1]) + ": " + msg(m[2])}
			s.pyFile = ""
			return e, voteCrash, true
		}
	}
	if !locationLike(t) {
		return ErrorLocation{}, 0, false
	}
	m := reFileLineCol.FindSubmatch(t)
	if m == nil {
		if c[0] != ' ' && c[0] != '\t' && t[len(t)-1] == ')' {
			if m := reRubyCrash.FindSubmatch(t); m != nil {
				// An uncaught Ruby exception, at the head of its stack.
				return ErrorLocation{File: string(m[1]), Line: atoi(m[2]), Message: string(m[4]) + ": " + msg(m[3])}, voteCrash, true
			}
		}
		return ErrorLocation{}, 0, false
	}
	e := ErrorLocation{File: string(m[1]), Line: atoi(m[2]), Column: atoi(m[3])}
	rest := m[4]
	switch {
	case hasPrefixFold(rest, "fatal error:"):
		e.Message = msg(rest[len("fatal error:"):])
		return e, voteCompile, true
	case hasPrefixFold(rest, "error:"):
		e.Message = msg(rest[len("error:"):])
		return e, voteCompile, true
	case hasPrefixFold(rest, "warning"), hasPrefixFold(rest, "note:"), hasPrefixFold(rest, "info"):
		return ErrorLocation{}, voteCompile, false
	case bytes.Contains(firstWord(rest), []byte("Warning")):
		return ErrorLocation{}, 0, false // Python's "a.py:3: DeprecationWarning: ..."
	case len(rest) == 0:
		return ErrorLocation{}, 0, false
	}
	e.Message = msg(rest)
	if s.xcError {
		return e, voteCompile, true
	}
	// Linters name a rule: "C: msg" (rubocop), "E501 msg" (flake8, ruff),
	// "msg (errcheck)" (golangci-lint).
	if lintCode(rest) || bytes.HasSuffix(bytes.TrimSpace(rest), []byte(")")) && bytes.HasSuffix(m[1], []byte(".go")) && lintSuffix(rest) {
		return e, voteLint, true
	}
	if s.standardAt > 0 && ln-s.standardAt <= 200 && (c[0] == ' ' || c[0] == '\t') {
		// JavaScript Standard Style lists its findings indented under
		// "standard: Use JavaScript Standard Style (...)".
		return e, voteLint, true
	}
	if c[0] == ' ' || c[0] == '\t' || rubyFrame(rest) || hasPrefixFold(rest, "exit status") {
		return ErrorLocation{}, 0, false // a stack frame or a test's log line
	}
	if bytes.HasSuffix(m[1], []byte(".go")) {
		return e, voteCompile, true // go build and go vet print no "error:"
	}
	return e, 0, true
}

// firstWord returns b up to its first space.
func firstWord(b []byte) []byte {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i]
	}
	return b
}

// lintCode reports whether a diagnostic message starts with a linter's rule
// code: "C: ", "W: " (rubocop) or "E501 ", "F401 " (flake8, ruff).
func lintCode(m []byte) bool {
	if len(m) >= 3 && isUpper(m[0]) && m[1] == ':' && m[2] == ' ' {
		return true
	}
	i := 0
	for i < len(m) && isUpper(m[i]) && i < 3 {
		i++
	}
	j := i
	for j < len(m) && isDigit(m[j]) {
		j++
	}
	return i > 0 && j-i >= 2 && j < len(m) && m[j] == ' '
}

// lintSuffix reports whether a message ends with "(linter)".
func lintSuffix(m []byte) bool {
	m = bytes.TrimSpace(m)
	i := bytes.LastIndexByte(m, '(')
	if i < 0 {
		return false
	}
	name := m[i+1 : len(m)-1]
	if len(name) == 0 || len(name) > 20 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '-') {
			return false
		}
	}
	return true
}

// msg turns a matched message into a trimmed, bounded string.
func msg(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		b = b[:300]
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// rubyFrame reports whether b holds a Ruby stack frame's method part,
// ":in 'f'" (Ruby 3.4 and later) or ":in `f'".
func rubyFrame(b []byte) bool {
	return bytes.Contains(b, []byte(":in `")) || bytes.Contains(b, []byte(":in '"))
}
