package loganalysis

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// Analyze reads a raw CI job log from r, once and with bounded memory, and
// explains the failure it shows. It returns an error only when r fails or ctx
// ends. A log without any sign of failure gives category "unknown", the
// summary "no failure found in the log" and an excerpt of its last printable
// lines (none when its last lines are binary data). Only words in mostly
// printable lines count as signs of failure.
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

// analyzer holds the bounded state of one streaming analysis.
type analyzer struct {
	opts     Options
	tune     Tuning
	buf      []byte
	ln       int64
	ring     ring
	seg      int   // segments are delimited by CI exit reports
	segStart int64 // the first line of the current segment
	section  string
	command  string
	reportAt int64    // the line that opened a Travis exit report spanning lines, or 0
	skipList bool     // in the indented list under a "Skipped:" or "Pending:" heading
	text     textLine // the text line in hand, reused to spare a copy per line
	exclaim  bool     // the line before exclaimed that something failed (see exclaimed)
	jul      julRecord

	open     *cluster
	clusters []*cluster
	seq      int

	fails    []failMark
	failSeq  int
	lineExit *int // the last non-zero exit status seen in ordinary output

	agentCl   *cluster // the open run of the agent's reports about the job
	agentBest *cluster // the agent report that explains the most

	signals   globalSignals
	rules     ruleState
	lineVotes [numVotes]int // category votes of the rules for the current line
	lineFound bool          // the rules found a failing test, an error location or a frame in it
	lineNamed bool          // the rules found a failing test or an error location in it
	tests     []found[FailingTest]
	winStart  int64 // the first line of the current density window
	winCand   int   // candidate lines in it
	dense     bool  // the window has used its budget (see denseBudget)
	errs      []found[ErrorLocation]
}

// found is a failing test or error location with the segment it was seen in.
type found[T any] struct {
	seg int
	v   T
}

// maxFound bounds the failing tests and error locations remembered.
const maxFound = 100

// When more than denseBudget lines of a window of denseWindow lines signal a
// failure, the rest of the window is read cheaply: no rules run and a full
// candidate only counts further lines. This bounds the work on logs where
// every line is an error.
const (
	denseWindow = 1024
	denseBudget = 128
)

func newAnalyzer(opts Options) *analyzer {
	a := &analyzer{opts: opts, tune: DefaultTuning(), buf: make([]byte, 0, maxKeep)}
	if opts.Tuning != nil {
		a.tune = *opts.Tuning
	}
	return a
}

// line processes one raw line.
func (a *analyzer) line(raw []byte) {
	a.ln++
	var sectionName []byte
	sectionStart, sectionMark := false, false
	if len(raw) > 4 && (raw[0] == 's' || raw[0] == 0x1b && raw[1] == '[' && raw[2] == '0' && raw[3] == 'K') {
		// A GitLab section marker: it names the section and shows only
		// the header that follows it.
		var rest []byte
		if sectionStart, sectionName, rest, sectionMark = gitlabSection(raw); sectionMark {
			raw = rest
		}
	}
	c := Clean(a.buf[:0], raw)
	a.buf = c[:0]
	k, text, st, hasSt := structure(c)
	switch {
	case sectionMark && sectionStart:
		k, text = kindHeader, sectionName
	case sectionMark && len(c) == 0:
		k = kindBlank
	case sectionMark:
		k = kindNoise
	case (k == kindHeader || k == kindCommand) && !textLike(c):
		k = kindText // binary data that happens to start like one
	}
	k = a.travisReport(k, c)
	if k != kindText && (k != kindBlank || a.agentCl != nil) {
		a.agentStep(k, c, 0)
	}
	switch k {
	case kindBlank:
		a.skipList = false
		if a.open != nil {
			a.open.add(c, 0)
			if a.ln-a.open.lastActive > maxQuiet {
				a.closeOpen()
			}
		}
		a.ring.push(a.ln, k, scoreOrdinary, false, false, c)
		a.exclaim, a.jul = false, julRecord{}
		return
	case kindHeader:
		a.closeOpen()
		a.section = string(appendCapped(nil, text))
		a.command = string(appendCapped(nil, groupCommand(c)))
	case kindCommand:
		a.closeOpen()
		a.command = string(appendCapped(nil, text))
	case kindNoise, kindAgent:
		a.idleLine(c, 0)
	case kindHere:
		a.closeOpen()
		if a.reportTo(func() { a.markFailed(0, false, "") }) {
			a.segStart = a.ln + 1
		}
	case kindExit:
		a.closeOpen()
		again := a.reportTo(func() {
			if st != 0 || !hasSt {
				a.markFailed(st, hasSt, string(appendCapped(nil, text)))
			}
		})
		a.signals.exit(st, hasSt)
		if !again {
			a.seg++
		}
		a.segStart = a.ln + 1
	}
	if k != kindText {
		a.ring.push(a.ln, k, scoreOrdinary, false, false, c)
		a.exclaim, a.jul = false, julRecord{}
		return
	}

	l := &a.text
	a.classify(l, c)
	if (a.jul != julRecord{} || julHeaderLike(c)) && a.jul.line(c) {
		// The exception a record below SEVERE carries: ordinary output.
		l.f, l.junk, l.quiet = 0, true, true
	}
	if l.f&(fCancel|fLost|fSignal|fTimeout) != 0 || a.agentCl != nil {
		a.agentStep(k, c, l.f)
	}
	score, prop := a.score(l)
	a.place(l, score, prop)
	p := a.ring.push(a.ln, k, score, prop, l.fresh, c)
	a.exclaim = prop && exclaimed(p)
}

// textLine is what classify found in one line of text output.
type textLine struct {
	c, t  []byte  // the cleaned line, and without its indent
	f     feature // the failure signals in its words
	junk  bool    // binary data, or a line the passing run printed too: no rules
	known bool    // the passing run printed it too (only looked up for signalling lines)
	fresh bool    // with a baseline: a non-blank line the passing run did not print
	skip  bool    // a test runner says it does not count (see notCounted)
	quiet bool    // part of a log record below warning level (see julRecord)
	// skipWord: a word or mark that notCounted looks for is in the line.
	skipWord bool
}

// classify finds the failure signals in a line of text output and, with a
// baseline, whether the passing run printed it too.
func (a *analyzer) classify(l *textLine, c []byte) {
	*l = textLine{c: c, t: trimIndent(c), f: features(c)}
	// A skip marker's word is no failure signal; it only says where to
	// look for one (see notCounted).
	l.skipWord = l.f&fSkip != 0 || len(l.t) > 3 && l.t[0] == '[' && l.t[2] == ']' && l.t[3] == ' '
	l.f &^= fSkip
	if l.f != 0 && !textLike(c) {
		l.f, l.junk = 0, true // a word in binary data, not a signal
	}
	if b := a.opts.Baseline; b != nil && len(l.t) > 0 && (l.f != 0 || a.open != nil) {
		// Only lines that signal a failure, or that could carry on one,
		// are looked up.
		l.known = b.Contains(c)
		l.fresh = !l.known
		if l.known && l.f != 0 {
			// The passing run printed it too: ordinary output.
			l.f, l.junk = 0, true
		}
	}
}

// score turns what classify found into the line's score (see the scale in
// scoring.go) and says whether the line only reports a failure of something
// else (a propagation: "make: *** [all] Error 1"). The rules run here: they
// raise the score of lines that name a failing test or an error location.
func (a *analyzer) score(l *textLine) (score int, prop bool) {
	c, t, f := l.c, l.t, l.f
	if f != 0 {
		score = lineScore(f)
		if score >= scoreSignal || f&fExit != 0 {
			prop = f&fTally != 0 || propagation(t, f)
		}
		if prop {
			score = min(score, scoreContext)
			if st, ok := exitStatusIn(t); ok && st != 0 {
				a.lineExit = &st
			}
		}
		a.signals.scan(t, f)
	}
	if score >= scoreSignal && infoLevel(stripLinePrefix(t)) {
		score = scoreContext // information, unless a rule below finds a failure in it
	}
	a.lineVotes, a.lineFound, a.lineNamed = [numVotes]int{}, false, false
	if crashLine(f) {
		a.lineVotes[voteCrash]++
	}
	if a.ln-a.winStart >= denseWindow {
		a.winStart, a.winCand, a.dense = a.ln, 0, false
	}
	// The markers of tests that do not count are looked for only where
	// they could matter: in lines that signal a failure or could carry on
	// one, and in lines with a skip word.
	l.skip = (l.skipWord || f&(fExpect|fFail) != 0 || a.open != nil) && notCounted(t)
	switch {
	case a.skipList && (c[0] == ' ' || c[0] == '\t'):
		l.skip = true // an item of a list of skipped or pending tests
	case a.skipList:
		a.skipList = false
	}
	if l.skipWord || t[0] == 'P' || t[0] == 'p' {
		if skipHeading(t) {
			a.skipList, l.skip = true, true
		}
	}
	if !a.dense && !l.junk && !l.skip {
		if s := a.rules.line(a, c, t, f); s > score && (f != 0 || textLike(c)) {
			score = s
		}
	}
	if score >= scoreSignal && ordinary(l) {
		score = scoreContext
	}
	if score == scoreOrdinary && !l.junk && !l.skip && a.open == nil {
		if a.exclaim {
			score = scoreSignal // the message after "rake aborted!"
		}
	}
	return score, prop
}

// ordinary reports whether a line that looks like a failure is ordinary
// output: it went well, will be tried again, only warns, does not count
// (skipped, pending, expected to fail), reports progress, or the passing run
// printed it too.
func ordinary(l *textLine) bool {
	return l.known || l.skip || l.f&fRetry != 0 || passed(l.t) || warningAnnotation(l.t) || progressLine(l.t) ||
		timingLine(l.t)
}

// timingLine reports whether a line only says how long a build took, at
// whatever level the tool logs it: sbt's "[error] Total time: 14 s,
// completed ..." and Maven's "[INFO] Total time:  12.3 s".
func timingLine(t []byte) bool {
	return bytes.HasPrefix(t[levelPrefix(t):], []byte("Total time:"))
}

// listItem reports whether a line, after its log level, is an item of a
// test runner's list: "[info] - saves a widget".
func listItem(c []byte) bool {
	c = c[levelPrefix(c):]
	return len(c) > 2 && c[0] == '-' && c[1] == ' '
}

// leveledContinuation reports whether a line carries on the failure above
// it once its log level is dropped: "[info]   500 did not equal 201".
func leveledContinuation(c []byte) bool {
	n := levelPrefix(c)
	return n > 0 && n < len(c) && (c[n] == ' ' || c[n] == '\t')
}

// place adds a scored line to the candidate excerpts: it starts or extends
// the open candidate, opens one at a stack trace, or lets the open one go
// quiet.
func (a *analyzer) place(l *textLine, score int, prop bool) {
	c, t := l.c, l.t
	if o := a.open; o != nil && o.named && listItem(c) && listItem([]byte(o.lines[0])) {
		// The next item of the list the failed test is in: its report
		// has ended ("[info] - next test" after "[info] - x *** FAILED ***").
		a.closeOpen()
	}
	switch {
	case l.quiet:
		a.idleLine(c, score)
	case score >= scoreSignal:
		if a.winCand++; a.winCand >= denseBudget {
			a.dense = true
		}
		a.candidate(c, score)
	case a.open == nil && (c[0] == ' ' || c[0] == '\t' || locationLike(t)) && frameLike(c, t):
		// A stack trace starts: the line above it says what went wrong.
		if p, q := a.ring.back(1), a.ring.back(0); p != nil && p.kind == kindText && !p.prop &&
			q.kind == kindText && frameLike(q.text, trimIndent(q.text)) && !frameLike(p.text, trimIndent(p.text)) {
			a.seq++
			a.open = &cluster{seq: a.seq, seg: a.seg, section: a.section, command: a.command,
				start: p.ln, firstCand: p.ln, lastActive: p.ln, maxScore: scoreStrong, nCand: 1}
			a.open.add(p.text, scoreStrong)
			a.open.add(q.text, scoreContext)
			a.open.add(c, scoreContext)
			a.open.lastActive = a.ln
		}
	case a.open != nil && (score == scoreContext && (!prop || l.fresh) || continuation(c, t) && !a.open.dedented(c) && !prop || leveledContinuation(c)) &&
		!passed(t) && !l.skip:
		// Context, a continuation, or output the passing run did not
		// print: the failure goes on.
		if frameLike(c, t) {
			a.lineFound = true
			if p := a.ring.back(0); p != nil && exceptionHead(p.text) && bytes.HasPrefix(t, []byte("at ")) {
				a.lineVotes[voteCrash]++ // an uncaught exception and its stack
			}
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
}

// maxReportLines bounds how far a Travis exit report whose command spans
// lines is followed: a quoted script longer than that is not one.
const maxReportLines = 200

// travisReport keeps the body of a Travis exit report whose command spans
// lines out of the output: Travis prints
//
//	The command "case "$X" in
//	  a) make ;;
//	esac
//	" exited with 1.
//
// and the lines in between are the script, not what it printed.
func (a *analyzer) travisReport(k lineKind, c []byte) lineKind {
	switch {
	case a.reportAt > 0 && (k == kindExit || a.ln-a.reportAt > maxReportLines):
		a.reportAt = 0
	case a.reportAt > 0 && (k == kindText || k == kindBlank):
		return kindNoise
	case len(c) > 0 && (c[0] == 't' || c[0] == 'T') &&
		(k == kindNoise && bytes.HasPrefix(c, []byte("travis_")) || k == kindText && bytes.HasPrefix(c, []byte("The command \""))):
		if i := bytes.Index(c, []byte("The command \"")); i >= 0 && !bytes.Contains(c[i:], []byte("\" exited with ")) &&
			!bytes.Contains(c[i:], []byte("\" failed ")) {
			a.reportAt = a.ln
			return kindNoise
		}
	}
	return k
}

// reportTo runs report, which records a failure report, for the segment the
// report belongs to: the one before when nothing came between this report and
// the previous one (Buildkite prints "🚨 Error: ... exited with status 1",
// then "^^^ +++"). It reports whether that was so.
func (a *analyzer) reportTo(report func()) (again bool) {
	if a.seg > 0 && a.ln == a.segStart {
		a.seg--
		report()
		a.seg++
		return true
	}
	report()
	return false
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
