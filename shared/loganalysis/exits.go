package loganalysis

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

// segFailed reports whether a CI runner reported segment seg failed.
func (a *analyzer) segFailed(seg int) bool {
	_, ok := a.failMark(seg)
	return ok
}

// failMark returns the failure report of segment seg, if any.
func (a *analyzer) failMark(seg int) (failMark, bool) {
	for i := len(a.fails) - 1; i >= 0; i-- {
		if a.fails[i].seg == seg {
			return a.fails[i], true
		}
	}
	return failMark{}, false
}

// lastFail returns the latest failure report, or one with seq -1.
func (a *analyzer) lastFail() failMark {
	if len(a.fails) == 0 {
		return failMark{seq: -1}
	}
	return a.fails[len(a.fails)-1]
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
