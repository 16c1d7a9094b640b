package analysis

import (
	"fmt"
	"regexp"
	"strings"
)

// Annotation settings: one annotation per build, replaced as more of its
// jobs are analyzed.
const (
	AnnotationContext = "kitefix"
	AnnotationStyle   = "error"
	// MaxAnnotationBytes keeps the annotation far below Buildkite's 1 MiB
	// limit and short enough to read on the build page.
	MaxAnnotationBytes = 64 << 10
	// Per group of identical failures, the annotation shows one excerpt of
	// at most this many lines and bytes, and this many failing tests.
	maxReportExcerptLines = 30
	maxReportExcerptBytes = 4 << 10
	maxReportTests        = 10
	// maxReportJobs bounds the jobs one build report holds.
	maxReportJobs = 200
	// A group of identical failures names at most maxGroupJobLinks of its
	// jobs (a wide parallel step can fail in every one of its jobs the
	// same way), and a job name or a test name is cut at maxReportName
	// bytes: the size of one group stays bounded, so the first group
	// always fits.
	maxGroupJobLinks = 20
	maxReportName    = 120
)

// BuildReport is what the annotation of one build is made from: the
// analyzed jobs of the build, in the order they were analyzed. It is stored
// so that the annotation can be rebuilt whole as more jobs finish.
type BuildReport struct {
	TenantID    string
	Org         string
	Pipeline    string
	BuildNumber int
	BuildID     string
	Jobs        []ReportJob
	// Version counts the writes; see Store.PutBuildReport.
	Version int64
}

// ReportJob is one analyzed job as the annotation shows it.
type ReportJob struct {
	JobID        string   `json:"job_id"`
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	Category     string   `json:"category"`
	Summary      string   `json:"summary"`
	Fingerprint  string   `json:"fingerprint"`
	Excerpt      string   `json:"excerpt"`
	StartLine    int64    `json:"start_line"`
	FailingTests []string `json:"failing_tests"`
	Retried      bool     `json:"retried"`
}

// reportJob is rec as the annotation shows it: its best excerpt trimmed and
// redacted, its first failing tests.
func reportJob(rec Record) ReportJob {
	j := ReportJob{
		JobID:       rec.JobID,
		Name:        rec.JobName,
		URL:         rec.Links.Job,
		Category:    string(rec.Category),
		Summary:     Redact(rec.Summary),
		Fingerprint: rec.Fingerprint,
		Retried:     rec.Actions.Retried != nil,
	}
	if j.Fingerprint == "" {
		j.Fingerprint = "job:" + rec.JobID
	}
	if len(rec.Excerpts) > 0 {
		ex := rec.Excerpts[0]
		j.Excerpt = truncateUTF8(firstLines(Redact(ex.Text), maxReportExcerptLines), maxReportExcerptBytes)
		j.StartLine = ex.StartLine
	}
	for i, ft := range rec.FailingTests {
		if i == maxReportTests {
			break
		}
		j.FailingTests = append(j.FailingTests, Redact(ft.Name))
	}
	return j
}

// with returns the report with job added, or replacing the entry of the
// same job.
func (r BuildReport) with(job ReportJob) BuildReport {
	jobs := make([]ReportJob, 0, len(r.Jobs)+1)
	replaced := false
	for _, j := range r.Jobs {
		if j.JobID == job.JobID {
			j, replaced = job, true
		}
		jobs = append(jobs, j)
	}
	if !replaced && len(jobs) < maxReportJobs {
		jobs = append(jobs, job)
	}
	r.Jobs = jobs
	return r
}

// failureGroup is the jobs of a build that failed the same way.
type failureGroup struct {
	first ReportJob
	jobs  []ReportJob
}

// groups collects the report's jobs by fingerprint, in the order each
// fingerprint was first seen.
func (r BuildReport) groups() []failureGroup {
	var out []failureGroup
	index := map[string]int{}
	for _, j := range r.Jobs {
		i, ok := index[j.Fingerprint]
		if !ok {
			i = len(out)
			index[j.Fingerprint] = i
			out = append(out, failureGroup{first: j})
		}
		out[i].jobs = append(out[i].jobs, j)
	}
	return out
}

// Markdown renders the annotation: per distinct failure its category,
// summary, best excerpt, failing tests and the jobs that share it. It stays
// under MaxAnnotationBytes: excerpts of later groups are dropped first,
// then whole groups.
func (r BuildReport) Markdown() string {
	groups := r.groups()
	head := fmt.Sprintf("#### kitefix: %s\n\n", plural(len(groups), "distinct failure", "distinct failures")+" in "+plural(len(r.Jobs), "failed job", "failed jobs"))
	const tail = "\n<sub>Analyzed from the raw job logs by kitefix.</sub>\n"
	budget := MaxAnnotationBytes - len(head) - len(tail) - 200
	var b strings.Builder
	b.WriteString(head)
	for i, g := range groups {
		full := renderGroup(g, true)
		if len(full) <= budget {
			b.WriteString(full)
			budget -= len(full)
			continue
		}
		short := renderGroup(g, false)
		if len(short) <= budget {
			b.WriteString(short)
			budget -= len(short)
			continue
		}
		fmt.Fprintf(&b, "\n…and %s not shown.\n", plural(len(groups)-i, "more failure", "more failures"))
		break
	}
	b.WriteString(tail)
	return b.String()
}

func renderGroup(g failureGroup, excerpt bool) string {
	var b strings.Builder
	j := g.first
	summary := j.Summary
	if summary == "" {
		summary = "no explanation found in the log"
	}
	fmt.Fprintf(&b, "**%s** · %s\n\n", inlineText(j.Category), inlineText(summary))
	if excerpt && j.Excerpt != "" {
		fence := codeFence(j.Excerpt)
		fmt.Fprintf(&b, "%stext\n%s\n%s\n", fence, j.Excerpt, fence)
		if j.StartLine > 0 {
			fmt.Fprintf(&b, "<sub>from line %d of the log of %s</sub>\n", j.StartLine, inlineText(shortName(j.Name)))
		}
		b.WriteString("\n")
	}
	if len(j.FailingTests) > 0 {
		tests := make([]string, len(j.FailingTests))
		for i, t := range j.FailingTests {
			tests[i] = codeSpan(shortName(t))
		}
		fmt.Fprintf(&b, "Failing tests: %s\n\n", strings.Join(tests, ", "))
	}
	links := make([]string, 0, min(len(g.jobs), maxGroupJobLinks)+1)
	for i, job := range g.jobs {
		if i == maxGroupJobLinks {
			links = append(links, fmt.Sprintf("and %d more", len(g.jobs)-i))
			break
		}
		name := job.Name
		if name == "" {
			name = "job " + job.JobID
		}
		l := inlineText(shortName(name))
		if job.URL != "" {
			l = "[" + l + "](" + linkURL.Replace(job.URL) + ")"
		}
		if job.Retried {
			l += " (retried by kitefix)"
		}
		links = append(links, l)
	}
	label := "Jobs"
	if len(g.jobs) == 1 {
		label = "Job"
	}
	fmt.Fprintf(&b, "%s: %s\n\n---\n", label, strings.Join(links, ", "))
	return b.String()
}

// shortName cuts a job or test name to maxReportName bytes.
func shortName(s string) string {
	if len(s) <= maxReportName {
		return s
	}
	return truncateUTF8(s, maxReportName-len("…")) + "…"
}

// linkURL percent-encodes what would end a Markdown link's destination
// early or turn it into markup.
var linkURL = strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E", "\n", "%0A", "\r", "%0D")

// plural is "1 thing" or "n things".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// markdownSpecial are the characters that could turn text into markup.
var markdownSpecial = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "|", `\|`, "#", `\#`, "\n", " ", "\r", " ",
)

// inlineText escapes s for use in a line of Markdown.
func inlineText(s string) string { return markdownSpecial.Replace(s) }

// codeSpan puts s in a code span that s cannot close.
func codeSpan(s string) string {
	s = strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
	ticks := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return ticks + s + ticks
}

// codeFence is a fence longer than any backtick run in s.
func codeFence(s string) string {
	return strings.Repeat("`", max(3, longestRun(s, '`')+1))
}

func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// secretPatterns match credentials that logs sometimes print: Buildkite,
// GitHub, GitLab, Slack and AWS tokens, bearer and basic credentials,
// private keys, passwords in URLs, and the values of variables whose names
// say they hold a secret. Each comes with its replacement.
var secretPatterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\bbk(?:ua|ct|aa|aj)_[A-Za-z0-9]{20,}`), "[REDACTED]"},
	{regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{20,}`), "[REDACTED]"},
	{regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{20,}`), "[REDACTED]"},
	{regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`), "[REDACTED]"},
	{regexp.MustCompile(`\bxox[abprs]-[A-Za-z0-9-]{10,}`), "[REDACTED]"},
	{regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`), "[REDACTED]"},
	{regexp.MustCompile(`(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)`), "[REDACTED]"},
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`), "$1 [REDACTED]"},
	{regexp.MustCompile(`://[^/\s:@]+:[^/\s@]+@`), "://[REDACTED]@"},
	{regexp.MustCompile(`(?i)\b([A-Za-z0-9_.-]*` + secretName + `[A-Za-z0-9_.-]*\s*=\s*)("[^"]*"|'[^']*'|[^\s"']+)`), "$1[REDACTED]"},
	{regexp.MustCompile(`(?i)("?[A-Za-z0-9_.-]*` + secretName + `[A-Za-z0-9_.-]*"?\s*:\s*)("[^"]*"|'[^']*')`), "$1[REDACTED]"},
}

// secretName is what the name of a variable holding a secret contains.
const secretName = `(?:secret|token|passw(?:or)?d|passwd|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)`

// Redact replaces what looks like a credential in s with [REDACTED].
func Redact(s string) string {
	for _, p := range secretPatterns {
		s = p.re.ReplaceAllString(s, p.repl)
	}
	return s
}
