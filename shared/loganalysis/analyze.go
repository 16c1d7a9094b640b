package loganalysis

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
)

// Analyze reads a raw CI job log from r, once and with bounded memory, and
// explains the failure it shows. It returns an error only when r fails or ctx
// ends; a log without any sign of failure gives category "unknown" and an
// excerpt of its last lines.
func Analyze(ctx context.Context, r io.Reader, opts Options) (Result, error) {
	a := newAnalyzer(opts.withDefaults())
	lr := newLineReader(r)
	for {
		if lr.lines&0x3fff == 0 {
			if err := ctx.Err(); err != nil {
				return Result{}, fmt.Errorf("analyze log: %w", err)
			}
		}
		raw, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("read log: %w", err)
		}
		a.line(raw)
	}
	res := a.result()
	res.Lines, res.Bytes = lr.lines, lr.bytes
	return res, nil
}

// failMark is a CI runner's report that a command exited non-zero.
type failMark struct {
	seq     int
	seg     int
	line    int64
	status  int
	known   bool
	command string
	section string
}

// maxFailMarks bounds the exit reports remembered.
const maxFailMarks = 16

// analyzer holds the bounded state of one streaming analysis.
type analyzer struct {
	opts    Options
	buf     []byte
	ln      int64
	ring    ring
	seg     int // segments are delimited by CI exit reports
	section string
	command string

	open     *cluster
	clusters []*cluster
	seq      int

	fails    []failMark
	failSeq  int
	lineExit *int // the last non-zero exit status seen in ordinary output

	signals   globalSignals
	rules     ruleState
	lineVotes [numCategories]int // category votes of the rules for the current line
	lineFound bool               // the rules found a failing test, an error location or a frame in it
	lineNamed bool               // the rules found a failing test or an error location in it
	tests     []found[FailingTest]
	errs      []found[ErrorLocation]
}

// found is a failing test or error location with the segment it was seen in.
type found[T any] struct {
	seg int
	v   T
}

// maxFound bounds the failing tests and error locations remembered.
const maxFound = 100

func newAnalyzer(opts Options) *analyzer {
	return &analyzer{opts: opts, buf: make([]byte, 0, maxKeep)}
}

func (a *analyzer) segFailed(seg int) bool {
	_, ok := a.failMark(seg)
	return ok
}

func (a *analyzer) failMark(seg int) (failMark, bool) {
	for i := len(a.fails) - 1; i >= 0; i-- {
		if a.fails[i].seg == seg {
			return a.fails[i], true
		}
	}
	return failMark{}, false
}

func (a *analyzer) lastFail() failMark {
	if len(a.fails) == 0 {
		return failMark{seq: -1}
	}
	return a.fails[len(a.fails)-1]
}

// line processes one raw line.
func (a *analyzer) line(raw []byte) {
	a.ln++
	c := Clean(a.buf[:0], raw)
	a.buf = c[:0]
	k, text, st, hasSt := structure(c)
	switch k {
	case kindBlank:
		if a.open != nil {
			a.open.add(c, 0)
			if a.ln-a.open.lastActive > maxQuiet {
				a.closeOpen()
			}
		}
		a.ring.push(a.ln, k, 0, false, c)
		return
	case kindHeader:
		a.closeOpen()
		a.section = string(appendCapped(nil, text))
		a.command = ""
	case kindCommand:
		a.closeOpen()
		a.command = string(appendCapped(nil, text))
	case kindNoise:
		a.idleLine(c, 0)
	case kindHere:
		a.closeOpen()
		a.markFailed(0, false, "")
	case kindExit:
		a.closeOpen()
		if st != 0 || !hasSt {
			a.markFailed(st, hasSt, string(appendCapped(nil, text)))
		}
		a.signals.exit(st, hasSt)
		a.seg++
	}
	if k != kindText {
		a.ring.push(a.ln, k, 0, false, c)
		return
	}

	t := trimIndent(c)
	f := features(c)
	score := 0
	prop := false
	if f != 0 {
		score = lineScore(f)
		if score >= 2 || f&fExit != 0 {
			prop = f&fTally != 0 || propagation(t, f)
		}
		if prop {
			score = min(score, 1)
			if st, ok := exitStatusIn(t); ok && st != 0 {
				a.lineExit = &st
			}
		}
		a.signals.scan(t, f)
	}
	a.lineVotes, a.lineFound, a.lineNamed = [numCategories]int{}, false, false
	if s := a.rules.line(a, c, t, f); s > score {
		score = s
	}
	switch {
	case score >= 2:
		a.candidate(c, score)
	case a.open == nil && (c[0] == ' ' || c[0] == '\t' || locationLike(t)) && frameLike(c, t):
		// A stack trace starts: the line above it says what went wrong.
		if p, q := a.ring.back(1), a.ring.back(0); p != nil && p.kind == kindText && !p.prop &&
			q.kind == kindText && frameLike(q.text, trimIndent(q.text)) && !frameLike(p.text, trimIndent(p.text)) {
			a.seq++
			a.open = &cluster{seq: a.seq, seg: a.seg, section: a.section, command: a.command,
				start: p.ln, firstCand: p.ln, lastActive: p.ln, maxScore: 3, nCand: 1}
			a.open.add(p.text, 3)
			a.open.add(q.text, 1)
			a.open.add(c, 1)
			a.open.lastActive = a.ln
		}
	case a.open != nil && (score == 1 && !prop || continuation(c, t)):
		if frameLike(c, t) {
			a.lineFound = true
		}
		a.open.add(c, score)
		a.open.lastActive = a.ln
		a.open.idle = 0
	default:
		a.idleLine(c, score)
	}
	if a.open != nil {
		for i, v := range a.lineVotes {
			a.open.votes[i] += v
		}
		if a.lineFound || a.lineNamed {
			a.open.specific++
		}
		a.open.named = a.open.named || a.lineNamed
	}
	a.ring.push(a.ln, k, score, prop, c)
}

// idleLine adds an unremarkable line to the open cluster, closing it when it
// has gone quiet.
func (a *analyzer) idleLine(c []byte, score int) {
	if a.open == nil {
		return
	}
	a.open.add(c, score)
	a.open.idle++
	if a.open.idle > maxIdle || a.ln-a.open.lastActive > maxQuiet {
		a.closeOpen()
	}
}

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
			start: a.ln, firstCand: a.ln}
		// Take in the line that introduces this one, if any: go test
		// prints a failed test's output above its "--- FAIL" line.
		if bytes.HasPrefix(trimIndent(c), []byte("--- FAIL")) {
			a.takeIndented()
		} else if warningsAsErrors(c) {
			a.takeWarning()
		} else if p := a.ring.back(0); p != nil && p.kind == kindText && introduces(p) {
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

// introduces reports whether a remembered line leads into the failure that
// follows it: a heading that ends with a colon or a numbered item.
func introduces(p *ringLine) bool {
	if p.prop {
		return false
	}
	t := bytes.TrimSpace(p.text)
	if len(t) == 0 || len(t) > 200 {
		return false
	}
	return t[len(t)-1] == ':' || numberedItem(t) || p.score == 1
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
// "File "a.py", line 3", "  a.ex:9: f/1" or Ruby's "a.rb:15:in `f'".
func frameLike(c, t []byte) bool {
	if len(t) == 0 {
		return false
	}
	if c[0] == ' ' || c[0] == '\t' {
		return bytes.HasPrefix(t, []byte("at ")) || bytes.HasPrefix(t, []byte("File \"")) ||
			bytes.HasPrefix(t, []byte("from ")) || locationLike(t) ||
			t[0] == '(' && locationLike(t[bytes.IndexByte(t, ' ')+1:])
	}
	return locationLike(t) && bytes.Contains(t, []byte(":in `"))
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
	return frameLike(c, t) || bytes.HasPrefix(t, []byte("Caused by")) ||
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

// markFailed records that the current segment's command failed, and keeps the
// lines just before the report as a fallback excerpt.
func (a *analyzer) markFailed(status int, known bool, command string) {
	if fm, ok := a.failMark(a.seg); ok {
		// A second report for the same segment (Buildkite prints both the
		// exit status and "^^^ +++"): fill in what it adds.
		for i := range a.fails {
			if a.fails[i].seq == fm.seq {
				if known && !a.fails[i].known {
					a.fails[i].status, a.fails[i].known = status, true
				}
				if command != "" && a.fails[i].command == "" {
					a.fails[i].command = command
				}
			}
		}
		return
	}
	a.failSeq++
	if command == "" {
		command = a.command
	}
	a.fails = append(a.fails, failMark{seq: a.failSeq, seg: a.seg, line: a.ln, status: status,
		known: known, command: command, section: a.section})
	a.keepFailed(a.seg)
	if len(a.fails) > maxFailMarks {
		a.fails = a.fails[1:]
	}
	a.tailCluster()
}

// tailCluster makes a low-scored cluster of the last few output lines.
func (a *analyzer) tailCluster() {
	var idx []int
	for i := 0; i < ringSize && len(idx) < 5; i++ {
		p := a.ring.back(i)
		if p == nil || p.kind == kindCommand || p.kind == kindHeader || p.kind == kindExit {
			break
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

// The earliest cluster of a segment that names a failing test or an error
// location, with at least firstMinScore, gets firstBonus: when one failure
// sets off others, the first one explains them.
const (
	firstBonus    = 4.0
	firstMinScore = 3
)

// result picks the best explanation from what was gathered.
func (a *analyzer) result() Result {
	a.closeOpen()
	if len(a.fails) == 0 || a.lastFail().seg != a.seg {
		// No exit report closed the last segment: its end is the log's.
		a.tailCluster()
	}
	res := Result{Category: CategoryUnknown, Excerpts: []Excerpt{}, FailingTests: []FailingTest{},
		Errors: []ErrorLocation{}}
	if a.ln == 0 {
		res.Summary = "the log is empty"
		res.Fingerprint = fingerprint(res.Category, nil)
		return res
	}
	type ranked struct {
		c *cluster
		s float64
	}
	lastOfSeg := map[int]int{}
	for _, c := range a.clusters {
		if !c.tail && c.seq > lastOfSeg[c.seg] {
			lastOfSeg[c.seg] = c.seq
		}
	}
	// The first failure that names a test or an error location in a
	// segment is often the cause of what follows.
	firstOfSeg := map[int]int{}
	for _, c := range a.clusters {
		if (c.named || c.specific > 0 && c.maxScore >= 5) && c.maxScore >= firstMinScore && c.lastActive > c.firstCand {
			if f, ok := firstOfSeg[c.seg]; !ok || c.seq < f {
				firstOfSeg[c.seg] = c.seq
			}
		}
	}
	rs := make([]ranked, 0, len(a.clusters))
	for _, c := range a.clusters {
		s := a.rank(c, lastOfSeg[c.seg] == c.seq)
		if f, ok := firstOfSeg[c.seg]; ok && f == c.seq {
			s += firstBonus
		}
		rs = append(rs, ranked{c, s})
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].s != rs[j].s {
			return rs[i].s > rs[j].s
		}
		return rs[i].c.seq > rs[j].c.seq
	})
	var best *cluster
	if len(rs) > 0 {
		best = rs[0].c
		res.Excerpts = append(res.Excerpts, best.excerpt(a.opts.MaxExcerptLines))
		for _, r := range rs[1:] {
			if len(res.Excerpts) >= a.opts.MaxExcerpts {
				break
			}
			// Another excerpt only when it is nearly as good.
			if r.c.tail || r.c.seg != best.seg || r.s < rs[0].s-2 || r.c.maxScore < 4 {
				continue
			}
			res.Excerpts = append(res.Excerpts, r.c.excerpt(a.opts.MaxExcerptLines))
		}
	}
	a.describe(&res, best)
	return res
}
