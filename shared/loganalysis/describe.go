package loganalysis

import "strings"

// maxListed caps the failing tests and errors in a result.
const maxListed = 20

// describe fills in everything but the excerpts, from the best cluster (nil
// when there is none) and the whole-log state.
func (a *analyzer) describe(res *Result, best *cluster) {
	seg := a.seg
	if best != nil {
		seg = best.seg
		res.Section, res.Command = best.section, best.command
	}
	if fm, ok := a.failMark(seg); ok {
		// The command in effect at the exit report, unless the failure
		// was in an earlier group of the same command's output.
		if fm.command != "" && (best == nil || best.command == "" || best.section == fm.section) {
			res.Command = fm.command
		}
		if res.Section == "" {
			res.Section = fm.section
		}
		if fm.known {
			st := fm.status
			res.ExitStatus = &st
		}
	}
	if res.ExitStatus == nil {
		if fm := a.lastFail(); fm.seq >= 0 && fm.known {
			st := fm.status
			res.ExitStatus = &st
		} else if a.lineExit != nil {
			st := *a.lineExit
			res.ExitStatus = &st
		}
	}
	res.FailingTests = listFor(a.tests, seg)
	res.Errors = listFor(a.errs, seg)
	res.Category = a.category(res, best)
	reported := len(a.fails) > 0 || res.ExitStatus != nil && *res.ExitStatus != 0
	res.Summary = summary(res, best, reported)
	res.Fingerprint = fingerprint(res.Category, fingerprintLines(res, best))
}

// listFor returns the items found in segment seg, or all of them when none
// was found there, capped at maxListed.
func listFor[T any](items []found[T], seg int) []T {
	out := []T{}
	for _, x := range items {
		if x.seg == seg && len(out) < maxListed {
			out = append(out, x.v)
		}
	}
	if len(out) == 0 {
		for _, x := range items {
			if len(out) < maxListed {
				out = append(out, x.v)
			}
		}
	}
	return out
}

// failingTestVotes is what a named failing test adds to the test category:
// more than the strongest single hint of another category (5), so the
// network or time a failing test's output mentions does not outvote it.
const failingTestVotes = 8

// category decides the failure category: whole-job signs first, then what
// the excerpt's lines and the found tests and errors say.
func (a *analyzer) category(res *Result, best *cluster) Category {
	g := a.signals
	st := 0
	if res.ExitStatus != nil {
		st = *res.ExitStatus
	}
	ak := agentNone
	if a.agentBest != nil {
		ak = a.agentBest.agent
	}
	switch {
	case g.oom || st == 137 && !g.cancelled:
		return CategoryOOM
	case g.timeout || ak == agentTimeout:
		return CategoryTimeout
	case g.lost || st == -1 || g.disk || ak == agentLost || ak == agentCancel:
		return CategoryInfrastructure
	}
	if best == nil {
		return CategoryUnknown
	}
	votes := best.votes
	for i, l := range best.lines {
		if best.scores[i] >= 1 {
			voteCategories(&votes, []byte(l))
		}
	}
	voteCommand(&votes, best.command, best.section)
	crashed := votes[voteCrash] > 0
	outside := crashVotes(&votes, best.votes, res, best)
	if len(res.FailingTests) > 0 {
		// A named failing test outweighs what its output mentions: a test
		// that fails on a flaky network or a slow server is still a test.
		votes[voteTest] += failingTestVotes
		// What the test ran into is not the job's failure.
		votes[voteInfrastructure], votes[voteTimeout] = 0, 0
	}
	if len(res.Errors) > 0 && votes[voteLint] == 0 && !crashed {
		// Error locations are compiler diagnostics, unless the
		// excerpt is a crash: then they are where it happened.
		votes[voteCompile] += 2
	}
	bi, bv := -1, 0
	for i, v := range votes[:numCategories] {
		if v > bv {
			bi, bv = i, v
		}
	}
	if best.agent != agentNone && bv < 2 {
		if best.agent == agentError && !strings.HasPrefix(best.agentText, "Error ") {
			return CategoryConfig // a hook that prepares the job failed
		}
		return CategoryInfrastructure // the agent could not run the job
	}
	if bi < 0 || (best.tail || outside) && bv < 2 {
		// Nothing but the end of the output, or a crash outside a test
		// run with no named cause.
		return CategoryUnknown
	}
	return voteCategory[bi]
}
