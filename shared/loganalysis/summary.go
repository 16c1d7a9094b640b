package loganalysis

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// noFailure is the summary of a log in which no line signals a failure and
// no exit report says that a command failed.
const noFailure = "no failure found in the log"

// summary writes one line of at most 200 characters; reported says whether
// the log reports that a command failed. Lines that are mostly not printable
// (binary data) are never used.
func summary(res *Result, best *cluster, reported bool) string {
	var s string
	switch {
	case !reported && (best == nil || best.tail):
		return noFailure // nothing signals a failure, nothing reports one
	case best != nil && best.agent != agentNone:
		s = agentSummary(best, res.ExitStatus)
	case len(res.FailingTests) > 0:
		names := make([]string, 0, 3)
		for _, t := range res.FailingTests[:min(3, len(res.FailingTests))] {
			names = append(names, t.Name)
		}
		more := ""
		if len(res.FailingTests) > 3 {
			more = fmt.Sprintf(" and %d more", len(res.FailingTests)-3)
		}
		s = fmt.Sprintf("%d failing test(s): %s%s", len(res.FailingTests), strings.Join(names, ", "), more)
	case len(res.Errors) > 0:
		e := res.Errors[0]
		s = fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
		if n := len(res.Errors) - 1; n > 0 {
			s = fmt.Sprintf("%s (and %d more)", s, n)
		}
	case best != nil:
		s = string(stripLinePrefix([]byte(strongestLine(best))))
	}
	if s == "" {
		s = "the command failed"
		if res.ExitStatus != nil {
			s = fmt.Sprintf("the command failed with exit status %d", *res.ExitStatus)
		}
		s += " and the log does not say why"
	}
	if res.Command != "" && len(s)+len(res.Command) < 190 {
		s += " (in " + res.Command + ")"
	}
	return truncate(strings.Join(strings.Fields(s), " "), 200)
}

// strongestLine returns the first printable line of the cluster with its
// top score, else its first printable line ("" when there is none).
func strongestLine(c *cluster) string {
	for i, s := range c.scores {
		if l := strings.TrimSpace(c.lines[i]); int(s) == c.maxScore && l != "" && textLike([]byte(l)) {
			return l
		}
	}
	for _, l := range c.lines {
		if l := strings.TrimSpace(l); l != "" && textLike([]byte(l)) {
			return l
		}
	}
	return ""
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// stripLinePrefix drops what tools put before the message on a line, so a
// summary starts with what went wrong: BuildKit's step and time ("#8 1.904 "),
// timestamps ("2024-05-01T10:00:00.123Z ", "[10:00:00] ") and GitHub
// Actions annotation marks ("##[error]").
func stripLinePrefix(b []byte) []byte {
	for range 3 {
		n := len(b)
		b = trimIndent(stripAnnotation(stripBuildKit(stripTimestamp(b))))
		if len(b) == n || len(b) == 0 {
			break
		}
	}
	return b
}

// stripBuildKit drops a BuildKit step prefix: "#8 1.904 ".
func stripBuildKit(b []byte) []byte {
	if len(b) < 2 || b[0] != '#' {
		return b
	}
	i := 1 + digits(b[1:])
	if i == 1 || i >= len(b) || b[i] != ' ' {
		return b
	}
	j := i + 1 + digits(b[i+1:])
	if j == i+1 || j >= len(b) || b[j] != '.' {
		return b
	}
	k := j + 1 + digits(b[j+1:])
	if k == j+1 || k >= len(b) || b[k] != ' ' {
		return b
	}
	return b[k+1:]
}

// stripTimestamp drops a leading date and time, bare or in brackets:
// "2024-05-01T10:00:00.123Z", "2024-05-01 10:00:00,123", "[10:00:00]".
func stripTimestamp(b []byte) []byte {
	s := b
	open := len(s) > 0 && s[0] == '['
	if open {
		s = s[1:]
	}
	i := 0
	if len(s) >= 10 && digits(s) == 4 && s[4] == '-' && digits(s[5:]) == 2 && s[7] == '-' && digits(s[8:]) == 2 {
		i = 10
		if i < len(s) && (s[i] == 'T' || s[i] == ' ') {
			i++
		}
	}
	if len(s) >= i+8 && digits(s[i:]) == 2 && s[i+2] == ':' && digits(s[i+3:]) == 2 && s[i+5] == ':' && digits(s[i+6:]) == 2 {
		i += 8
		if i < len(s) && (s[i] == '.' || s[i] == ',') {
			i += 1 + digits(s[i+1:])
		}
		if i < len(s) && s[i] == 'Z' {
			i++
		} else if i+6 <= len(s) && (s[i] == '+' || s[i] == '-') && digits(s[i+1:]) >= 2 {
			i += 1 + digits(s[i+1:])
			if i < len(s) && s[i] == ':' {
				i += 1 + digits(s[i+1:])
			}
		}
	} else if i == 0 {
		return b
	}
	if open {
		if i >= len(s) || s[i] != ']' {
			return b
		}
		i++
	}
	if i < len(s) && s[i] != ' ' && s[i] != '\t' {
		return b
	}
	return s[i:]
}

// digits counts the ASCII digits b starts with.
func digits(b []byte) int {
	i := 0
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}
