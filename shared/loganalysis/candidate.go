package loganalysis

import "bytes"

// candidate handles a line that signals a failure.
func (a *analyzer) candidate(c []byte, score int) {
	if a.open != nil && a.open.full {
		a.closeOpen()
	}
	// A paragraph that starts at the margin after a blank line is a new
	// candidate.
	if a.open != nil && c[0] != ' ' && c[0] != '\t' {
		if p := a.ring.back(0); p != nil && p.kind == kindBlank {
			a.closeOpen()
		}
	}
	if a.open == nil {
		a.seq++
		a.open = &cluster{seq: a.seq, seg: a.seg, section: a.section, command: a.command,
			start: a.ln, firstCand: a.ln, goTest: string(a.rules.goRun), indent: len(c) - len(trimIndent(c))}
		// Take in the line that introduces this one, if any: go test
		// prints a failed test's output above its "--- FAIL" line.
		if bytes.HasPrefix(trimIndent(c), []byte("--- FAIL")) {
			a.takeIndented()
		} else if warningsAsErrors(c) {
			a.takeWarning()
		} else if p := a.ring.back(0); p != nil && p.kind == kindText && dashRule(p.text) {
			a.takeFramed()
		} else if p := a.ring.back(0); p != nil && p.kind == kindText && p.ln > 0 && p.ln == a.rules.standardAt {
			// JavaScript Standard Style's header names the tool.
			a.open.start = p.ln
			a.open.add(p.text, int(p.score))
		} else if p != nil && p.kind == kindText && p.ln == a.rules.pathLine && finding(c) {
			// A line that is only a path heads the findings below it.
			a.open.start = p.ln
			a.open.add(p.text, int(p.score))
		} else if p != nil && p.kind == kindText && introduces(p) {
			a.open.start = p.ln
			a.open.add(p.text, int(p.score))
		}
	}
	o := a.open
	o.add(c, score)
	o.lastActive = a.ln
	o.idle = 0
	o.nCand++
	if score > o.maxScore {
		o.maxScore = score
	}
}

// takeIndented starts the open cluster with the indented lines just above
// the current one.
func (a *analyzer) takeIndented() {
	n := 0
	for ; n < ringSize-1; n++ {
		p := a.ring.back(n)
		if p == nil || p.kind != kindText || len(p.text) == 0 || p.text[0] != ' ' && p.text[0] != '\t' {
			break
		}
	}
	for i := n - 1; i >= 0; i-- {
		p := a.ring.back(i)
		if i == n-1 {
			a.open.start = p.ln
		}
		a.open.add(p.text, int(p.score))
	}
}

// dashRule reports whether a line is only a rule of six or more dashes, as
// Docker BuildKit draws around the failed step's last output and around the
// Dockerfile lines it points at.
func dashRule(c []byte) bool {
	t := bytes.TrimSpace(c)
	return len(t) >= 6 && len(bytes.Trim(t, "-")) == 0
}

// takeFramed starts the open cluster with the framed blocks just above the
// current line: BuildKit ends a failed build with
//
//	------
//	 > [2/3] RUN make:
//	------
//	Dockerfile:12
//	--------------------
//	  12 | >>> RUN make
//	--------------------
//	ERROR: failed to solve: process "/bin/sh -c make" did not complete successfully
//
// and the frames say which step failed and what it printed last.
func (a *analyzer) takeFramed() {
	n, in := -1, false
	for i := 0; i < ringSize-1; i++ {
		p := a.ring.back(i)
		if p == nil || p.kind != kindText {
			break
		}
		switch {
		case dashRule(p.text):
			in = !in
			n = i
		case in:
			n = i
		case framedHead(p.text):
			n = i // "Dockerfile:12" names the lines the next frame shows
			continue
		}
		if !in && !dashRule(p.text) {
			break
		}
	}
	for i := n; i >= 0; i-- {
		p := a.ring.back(i)
		if i == n {
			a.open.start = p.ln
		}
		a.open.add(p.text, int(p.score))
	}
}

// framedHead reports whether a line names a file and line a frame below it
// shows: "Dockerfile:12".
func framedHead(c []byte) bool {
	i := bytes.LastIndexByte(c, ':')
	return i > 0 && i+1 < len(c) && digits(c[i+1:]) == len(c)-i-1 && bytes.IndexByte(c[:i], ' ') < 0
}

// warningsAsErrors reports whether a line says the build failed because
// warnings count as errors (-Werror and its kin).
func warningsAsErrors(c []byte) bool {
	return bytes.Contains(c, []byte("Werror")) || bytes.Contains(c, []byte("warnings as errors")) ||
		bytes.Contains(c, []byte("warnings being treated as errors"))
}

// takeWarning starts the open cluster at the last compiler warning in the
// ring, which is what failed the build when warnings count as errors.
func (a *analyzer) takeWarning() {
	n := -1
	for i := 0; i < ringSize-1; i++ {
		p := a.ring.back(i)
		if p == nil || p.kind == kindCommand || p.kind == kindHeader {
			break
		}
		if t := trimIndent(p.text); len(p.text) > 0 && p.text[0] != ' ' && locationLike(t) && bytes.Contains(t, []byte("arning")) {
			n = i
			break
		}
	}
	for i := n; i >= 0; i-- {
		p := a.ring.back(i)
		if i == n {
			a.open.start = p.ln
		}
		a.open.add(p.text, int(p.score))
	}
}

// exclaimed reports whether a remembered line only exclaims that something
// failed, as rake's "rake aborted!" does before the message that says why.
func exclaimed(p *ringLine) bool {
	if !p.prop || p.kind != kindText || len(p.text) > 60 {
		return false
	}
	t := bytes.TrimSpace(p.text)
	return len(t) > 1 && len(t) < 40 && t[len(t)-1] == '!'
}

// introduces reports whether a remembered line leads into the failure that
// follows it: a heading that ends with a colon or a numbered item.
func introduces(p *ringLine) bool {
	if p.prop {
		return exclaimed(p)
	}
	t := bytes.TrimSpace(p.text)
	if len(t) == 0 || len(t) > 200 {
		return false
	}
	if f := features(t); f&fWarn != 0 && f&(fError|fFail) == 0 {
		return false // a warning is not what failed
	}
	return t[len(t)-1] == ':' || numberedItem(t) || p.score == 1
}

// finding reports whether an indented line starts with a position in a file
// named above it: "  11:7  error ..." or "  line 12: ...".
func finding(c []byte) bool {
	if len(c) == 0 || c[0] != ' ' && c[0] != '\t' {
		return false
	}
	t := trimIndent(c)
	if hasPrefixFold(t, "line ") {
		return digits(t[5:]) > 0
	}
	n := digits(t)
	return n > 0 && n < len(t) && t[n] == ':' && digits(t[n+1:]) > 0
}

// numberedItem reports whether t starts like "1) " or "12) ".
func numberedItem(t []byte) bool {
	i := 0
	for i < len(t) && i < 4 && isDigit(t[i]) {
		i++
	}
	return i > 0 && i+1 < len(t) && t[i] == ')' && t[i+1] == ' '
}

// trimIndent drops leading spaces and tabs.
func trimIndent(c []byte) []byte {
	i := 0
	for i < len(c) && (c[i] == ' ' || c[i] == '\t') {
		i++
	}
	return c[i:]
}

// frameLike reports whether a line is a stack frame: "at f (a.js:1:2)",
// "File "a.py", line 3", "  a.ex:9: f/1" or Ruby's "a.rb:15:in 'f'" (or,
// before Ruby 3.4, "a.rb:15:in `f'").
func frameLike(c, t []byte) bool {
	if len(t) == 0 {
		return false
	}
	if c[0] == ' ' || c[0] == '\t' {
		return bytes.HasPrefix(t, []byte("at ")) || bytes.HasPrefix(t, []byte("File \"")) ||
			bytes.HasPrefix(t, []byte("from ")) || locationLike(t) ||
			t[0] == '(' && locationLike(t[bytes.IndexByte(t, ' ')+1:])
	}
	return locationLike(t) && rubyFrame(t)
}

// continuation reports whether a line carries on the failure above it: an
// indented line, a stack frame or a caret marker.
func continuation(c, t []byte) bool {
	if len(t) == 0 {
		return false
	}
	if c[0] == ' ' || c[0] == '\t' {
		return true
	}
	switch t[0] {
	case '^', '|', '>', '~':
		return true
	}
	if bytes.HasPrefix(t, []byte("│")) || bytes.HasPrefix(t, []byte("╵")) {
		return true // inside a box drawn around a diagnostic (Terraform)
	}
	if len(t) > 2 && t[0] == '#' && isDigit(t[1]) && bytes.Contains(t[:min(len(t), 12)], []byte(" 0x")) {
		return true // a sanitizer's or gdb's stack frame: "#3 0x4fb97b in free"
	}
	return frameLike(c, t) || bytes.HasPrefix(t, []byte("Caused by")) || bytes.HasPrefix(t, []byte("Reason: ")) ||
		bytes.HasPrefix(t, []byte("E ")) || bytes.HasPrefix(t, []byte("-->"))
}

func (a *analyzer) closeOpen() {
	if a.open == nil {
		return
	}
	a.open.trim()
	a.store(a.open)
	a.open = nil
}

// tailCluster makes a low-scored cluster of the last few printable output
// lines.
func (a *analyzer) tailCluster() {
	var idx []int
	for i := 0; i < ringSize && len(idx) < 5; i++ {
		p := a.ring.back(i)
		if p == nil || p.kind == kindCommand || p.kind == kindHeader || p.kind == kindExit {
			break
		}
		if p.kind == kindText && !textLike(p.text) {
			if len(idx) > 0 {
				break // the printable lines end at binary data
			}
			continue
		}
		if p.kind == kindText && !p.prop {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	a.seq++
	first := a.ring.back(idx[len(idx)-1])
	last := a.ring.back(idx[0])
	cl := &cluster{seq: a.seq, seg: a.seg, section: a.section, command: a.command, start: first.ln,
		firstCand: first.ln, lastActive: last.ln, maxScore: 1, nCand: 1, tail: true}
	for i := idx[len(idx)-1]; i >= 0; i-- {
		p := a.ring.back(i)
		if p.ln > last.ln {
			break
		}
		cl.add(p.text, int(p.score))
	}
	a.store(cl)
}
