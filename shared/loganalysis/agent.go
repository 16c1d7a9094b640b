package loganalysis

import (
	"bytes"
	"fmt"
	"strings"
)

// agentKind says what the CI agent reported about the job itself, rather
// than about the command's output. A higher kind explains more.
type agentKind uint8

const (
	agentNone    agentKind = iota
	agentError             // an agent error: setting up the job, checking out, a plugin
	agentSignal            // the command was ended by a signal
	agentCancel            // the job was cancelled
	agentTimeout           // the job ran out of time
	agentLost              // the agent stopped reporting
)

// agentLead is how a summary states each kind in plain words.
var agentLead = [...]string{
	agentSignal:  "The command was ended by a signal",
	agentCancel:  "The job was cancelled",
	agentTimeout: "The job timed out",
	agentLost:    "The agent was lost",
}

// agentText strips what the agent puts before its message: a comment mark,
// an emoji and "Error: " or "Warning: ".
func agentText(c []byte) []byte {
	t := bytes.TrimSpace(c)
	t = bytes.TrimPrefix(t, []byte("# "))
	t = bytes.TrimPrefix(t, []byte("🚨 "))
	t = bytes.TrimPrefix(t, []byte("⚠️ "))
	for _, p := range [...]string{"error: ", "warning: "} {
		if hasPrefixFold(t, p) {
			t = t[len(p):]
		}
	}
	return bytes.TrimSpace(t)
}

// agentReport classifies a line as the agent's report about the job: k is
// the line's structural kind, c the cleaned line and f its signals (0 for
// lines that are not kindText).
func agentReport(k lineKind, c []byte, f feature) agentKind {
	switch k {
	case kindAgent:
		if kind := agentPhrase(agentText(c)); kind != agentNone {
			return kind
		}
		return agentError
	case kindExit:
		t := agentText(c)
		switch {
		case bytes.Contains(t, []byte("signal")):
			return agentSignal
		case bytes.Contains(t, []byte(" hook exited with status")), hasPrefixFold(t, "error "):
			return agentError // a hook or the agent's set-up failed
		}
		return agentNone
	case kindText:
		if f&(fCancel|fLost|fSignal|fTimeout) == 0 || f&fWarn != 0 && hasPrefixFold(bytes.TrimSpace(c), "warn") {
			return agentNone // a program's own warning ("WARNING: cancelled request")
		}
		if kind := agentPhrase(agentText(c)); kind != agentNone {
			return kind
		}
		if f&fSignal != 0 && f&(fExit|fKilled) != 0 {
			return agentSignal // "Process exited with signal SIGKILL"
		}
	}
	return agentNone
}

// agentPhrases start the agent's and the CI service's own reports about a
// job, lower case.
var agentPhrases = [...]struct {
	kind   agentKind
	phrase string
}{
	{agentCancel, "received cancellation signal"}, {agentCancel, "cancelled"}, {agentCancel, "canceled"},
	{agentCancel, "canceling job"}, {agentCancel, "cancelling job"},
	{agentCancel, "the job was cancel"}, {agentCancel, "job was cancel"}, {agentCancel, "job cancel"},
	{agentCancel, "the build was cancel"}, {agentCancel, "build was cancel"},
	{agentLost, "agent lost"}, {agentLost, "the agent was lost"}, {agentLost, "agent was lost"},
	{agentLost, "lost agent"}, {agentLost, "buildkite lost contact with the agent"},
	{agentTimeout, "job failed: execution took longer than"}, {agentCancel, "job failed: canceled"},
	{agentTimeout, "job timed out"}, {agentTimeout, "the job timed out"},
	{agentTimeout, "build timed out"}, {agentTimeout, "the build timed out"},
}

// agentPhrase recognises the start of an agent's report about the job, or
// an exit note that says the agent was lost.
func agentPhrase(t []byte) agentKind {
	for _, p := range agentPhrases {
		if hasPrefixFold(t, p.phrase) {
			return p.kind
		}
	}
	if bytes.Contains(t, []byte("agent lost;")) || bytes.Contains(t, []byte("lost contact with the agent")) {
		return agentLost // "Exited with status -1 (process killed or agent lost; ...)"
	}
	return agentNone
}

// agentTrailer reports whether a line carries on an agent report: the
// shell's "Terminated" or "Killed", or another signal line.
func agentTrailer(k lineKind, c []byte, f feature) bool {
	if k == kindExit || k == kindHere || k == kindAgent {
		return true
	}
	t := bytes.TrimSpace(c)
	return k == kindText && len(t) < 80 && (eqFold(t, "terminated") || f&(fKilled|fCancel|fSignal|fAbort) != 0)
}

// agentStep follows the agent's reports about the job: it gathers each
// run of them, with the exit reports next to it, into a cluster of its own.
func (a *analyzer) agentStep(k lineKind, c []byte, f feature) {
	kind := agentReport(k, c, f)
	if kind == agentNone {
		if o := a.agentCl; o != nil {
			if a.ln == o.lastActive+1 && agentTrailer(k, c, f) {
				o.add(c, 1)
				o.lastActive = a.ln
			} else if a.ln > o.lastActive+1 {
				a.closeAgent()
			}
		}
		return
	}
	o := a.agentCl
	if o != nil && a.ln > o.lastActive+1 {
		a.closeAgent()
		o = nil
	}
	if o == nil {
		a.seq++
		o = &cluster{seq: a.seq, seg: a.seg, section: a.section, command: a.command, start: a.ln,
			firstCand: a.ln, maxScore: 2, nCand: 1}
		// Take in the exit reports just above: they belong to this report.
		n := 0
		for ; n < 3; n++ {
			p := a.ring.back(n)
			if p == nil || p.ln != a.ln-int64(n)-1 || p.kind != kindExit && p.kind != kindHere {
				break
			}
		}
		if n > 0 {
			o.seg = a.lastFail().seg
			o.start = a.ring.back(n - 1).ln
			for i := n - 1; i >= 0; i-- {
				o.add(a.ring.back(i).text, 1)
			}
		}
		a.agentCl = o
	}
	o.add(c, 3)
	o.lastActive = a.ln
	if kind > o.agent {
		o.agent, o.agentText = kind, string(appendCapped(nil, agentText(stripLinePrefix(c))))
	}
	if kind == agentCancel {
		a.signals.cancelled = true
	}
}

// closeAgent finishes the open agent cluster and keeps it when it explains
// more than the one kept so far.
func (a *analyzer) closeAgent() {
	o := a.agentCl
	if o == nil {
		return
	}
	a.agentCl = nil
	if a.agentBest == nil || o.agent > a.agentBest.agent {
		a.agentBest = o
	}
}

// agentSummary states an agent report in plain words, with the line that
// shows it: "The agent was lost (exit -1): Agent lost: ...".
func agentSummary(c *cluster, exit *int) string {
	lead := ""
	if int(c.agent) < len(agentLead) {
		lead = agentLead[c.agent]
	}
	if lead == "" || hasPrefixFold([]byte(c.agentText), strings.ToLower(lead)) {
		return c.agentText
	}
	if exit != nil {
		lead = fmt.Sprintf("%s (exit %d)", lead, *exit)
	}
	return lead + ": " + c.agentText
}
