package loganalysis

import (
	"bytes"
	"regexp"
	"strconv"
)

// This file holds what GitHub Actions and GitLab CI add to a job's log:
// workflow commands ("##[group]", "##[error]", "::error file=...::"),
// collapsible sections ("section_start:<ts>:<name>") and the runners' own
// reports of how a job ended.

// ghaStructure classifies a GitHub Actions log line that starts with "##[",
// as structure does. It reports handled false for lines it leaves to the
// rules, such as "##[error]" messages.
func ghaStructure(t []byte) (k lineKind, text []byte, status int, ok, handled bool) {
	switch {
	case bytes.HasPrefix(t, []byte("##[group]")):
		return kindHeader, bytes.TrimSpace(t[len("##[group]"):]), 0, false, true
	case bytes.HasPrefix(t, []byte("##[endgroup]")):
		return kindNoise, nil, 0, false, true
	case bytes.HasPrefix(t, []byte("##[error]Process completed with exit code ")):
		st, ok := statusAfter(t, "exit code ")
		return kindExit, nil, st, ok, true
	}
	return kindText, nil, 0, false, false
}

// groupCommand returns the command a GitHub Actions group runs, from its
// header line c ("##[group]Run go test ./..."), or nil when it names none.
func groupCommand(c []byte) []byte {
	t := bytes.TrimSpace(c)
	const run = "##[group]Run "
	if !bytes.HasPrefix(t, []byte(run)) {
		return nil
	}
	return bytes.TrimSpace(t[len(run):])
}

// gitlabJobFailed classifies GitLab Runner's report of how a job ended,
// t starting with "ERROR: Job failed": an exit report when it gives an exit
// code, otherwise the runner's own report (a timeout, a cancellation, a
// system failure).
func gitlabJobFailed(t []byte) (k lineKind, status int, ok bool) {
	if st, ok := statusAfter(t, "exit code "); ok {
		return kindExit, st, true
	}
	return kindAgent, 0, false
}

// gitlabSection recognises a GitLab CI section marker at the start of the
// raw line, perhaps after erase-line sequences ("\x1b[0K"):
// "section_start:1763632800:step_script[collapsed=true]\r\x1b[0KHeader" or
// "section_end:1763632815:step_script\r\x1b[0K". It returns whether the
// section starts, its name and what follows the marker on the line.
func gitlabSection(raw []byte) (start bool, name, rest []byte, ok bool) {
	r := raw
	for len(r) > 0 && r[0] == 0x1b && bytes.HasPrefix(r, []byte("\x1b[0K")) {
		r = r[len("\x1b[0K"):]
	}
	switch {
	case len(r) < 12 || r[0] != 's':
		return false, nil, nil, false
	case bytes.HasPrefix(r, []byte("section_start:")):
		start, r = true, r[len("section_start:"):]
	case bytes.HasPrefix(r, []byte("section_end:")):
		r = r[len("section_end:"):]
	default:
		return false, nil, nil, false
	}
	n := digits(r)
	if n == 0 || n >= len(r) || r[n] != ':' {
		return false, nil, nil, false
	}
	r = r[n+1:]
	j := 0
	for j < len(r) && (isLetter(r[j]) || isDigit(r[j]) || r[j] == '_' || r[j] == '-' || r[j] == '.') {
		j++
	}
	if j == 0 {
		return false, nil, nil, false
	}
	name, r = r[:j], r[j:]
	if len(r) > 0 && r[0] == '[' {
		if k := bytes.IndexByte(r, ']'); k >= 0 {
			r = r[k+1:]
		}
	}
	return start, name, r, true
}

// reAnnotationLoc is the location a GitHub Actions problem matcher puts
// after "##[error]": "src/a.ts(14,9): msg" or "src/a.ts:14:9: msg".
var reAnnotationLoc = regexp.MustCompile(`^((?:[A-Za-z]:)?[\w./\\@+~-]+\.[A-Za-z0-9]{1,6})(?:\((\d+)(?:,(\d+))?\)|:(\d+)(?::(\d+))?):\s*(.*)$`)

// annotation recognises a GitHub Actions error or warning annotation:
// "##[error]msg", "##[error]F(L,C): msg", "::error file=F,line=L,col=C::msg"
// and their warning forms. level is 2 for an error, 1 for a warning and 0
// for anything else; hasLoc reports whether e names a file.
func annotation(t []byte) (e ErrorLocation, hasLoc bool, level int) {
	if len(t) < 7 || t[0] != '#' && t[0] != ':' {
		return ErrorLocation{}, false, 0
	}
	switch {
	case bytes.HasPrefix(t, []byte("##[warning]")), bytes.HasPrefix(t, []byte("::warning")):
		return ErrorLocation{}, false, 1
	case bytes.HasPrefix(t, []byte("##[error]")):
		rest := t[len("##[error]"):]
		if m := reAnnotationLoc.FindSubmatch(rest); m != nil {
			e = ErrorLocation{File: string(m[1]), Message: msg(m[6])}
			if len(m[2]) > 0 {
				e.Line, e.Column = atoi(m[2]), atoi(m[3])
			} else {
				e.Line, e.Column = atoi(m[4]), atoi(m[5])
			}
			return e, true, 2
		}
		return ErrorLocation{Message: msg(rest)}, false, 2
	case bytes.HasPrefix(t, []byte("::error")):
		rest := t[len("::error"):]
		end := bytes.Index(rest, []byte("::"))
		if end < 0 {
			return ErrorLocation{}, false, 0
		}
		for p := range bytes.SplitSeq(bytes.TrimSpace(rest[:end]), []byte(",")) {
			key, val, _ := bytes.Cut(p, []byte("="))
			switch string(bytes.TrimSpace(key)) {
			case "file":
				e.File = string(bytes.TrimSpace(val))
			case "line":
				e.Line, _ = strconv.Atoi(string(val))
			case "col":
				e.Column, _ = strconv.Atoi(string(val))
			}
		}
		e.Message = msg(rest[end+2:])
		return e, e.File != "", 2
	}
	return ErrorLocation{}, false, 0
}

// stripAnnotation drops a GitHub Actions error or warning mark from the
// start of a line, for summaries: "##[error]", "::error file=...::".
func stripAnnotation(b []byte) []byte {
	if len(b) < 7 || b[0] != '#' && b[0] != ':' {
		return b
	}
	for _, p := range [...]string{"##[error]", "##[warning]"} {
		if bytes.HasPrefix(b, []byte(p)) {
			return b[len(p):]
		}
	}
	if bytes.HasPrefix(b, []byte("::error")) || bytes.HasPrefix(b, []byte("::warning")) {
		if i := bytes.Index(b[2:], []byte("::")); i >= 0 {
			return b[i+4:]
		}
	}
	return b
}

// warningAnnotation reports whether t is a GitHub Actions warning
// annotation, which never explains a failure by itself.
func warningAnnotation(t []byte) bool {
	if len(t) > 3 && t[0] == 'W' && t[1] == ':' && t[2] == ' ' {
		return true // apt's warning level: "W: GPG error: ..."
	}
	_, _, level := annotation(t)
	return level == 1
}
