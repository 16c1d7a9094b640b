// Package analysis turns a queued failed Buildkite job into a stored
// analysis, a build annotation and, when it is safe, one retry. It holds the
// analysis record, the worker that processes queue messages (re-read the
// build, stream the raw log into the analyzer, store, report back), the
// reconcile pass that enqueues failed jobs no webhook brought, the per-token
// request budget and the adapters that run the worker from SQS (Lambda) or
// from the durable queue of `kitefix serve`.
package analysis

import (
	"strings"
	"time"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

// State is how an analysis ended.
type State string

// The states of an analysis.
const (
	// StateAnalyzed: the log was read and analyzed.
	StateAnalyzed State = "analyzed"
	// StateFailed: the job could not be analyzed; Error says why.
	StateFailed State = "failed"
	// StateSkipped: the job needed no analysis; Reason says why.
	StateSkipped State = "skipped"
)

// Retention is how long an analysis is kept.
const Retention = 90 * 24 * time.Hour

// Limits of what is stored of an analysis. Excerpts are read by a person in
// an annotation and on the settings page; a few short ones say more than
// many long ones, and the limits keep a record far below DynamoDB's 400 KB
// item size.
const (
	MaxExcerpts      = 5
	MaxExcerptLines  = 80       // in all excerpts together
	MaxExcerptBytes  = 16 << 10 // in all excerpts together
	MaxFailingTests  = 50
	MaxErrorLocation = 50
)

// Record is one stored analysis: the analyzer's result plus where the job
// ran and what kitefix did about it. Its JSON encoding is what
// GET /v1/analyses returns; TenantID is never encoded.
type Record struct {
	loganalysis.Result

	ID          string    `json:"id"`
	TenantID    string    `json:"-"`
	Org         string    `json:"org"`
	Pipeline    string    `json:"pipeline"`
	BuildNumber int       `json:"build_number"`
	BuildID     string    `json:"build_id"`
	JobID       string    `json:"job_id"`
	JobName     string    `json:"job_name"`
	StepKey     string    `json:"step_key"`
	Branch      string    `json:"branch"`
	Commit      string    `json:"commit"`
	Links       Links     `json:"links"`
	State       State     `json:"state"`
	Error       string    `json:"error,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Actions     Actions   `json:"actions"`
	Baseline    *Baseline `json:"baseline,omitempty"`
	AnalyzedAt  time.Time `json:"analyzed_at"`
	DurationMS  int64     `json:"duration_ms"`
	// Requests counts the Buildkite requests spent on this job.
	Requests int `json:"requests"`
	// Reported is set once the annotation and retry decisions are done;
	// a record stored without it is finished by the next delivery of its
	// message.
	Reported bool `json:"-"`
}

// Links are the Buildkite web pages of the build and the job.
type Links struct {
	Build string `json:"build"`
	Job   string `json:"job"`
}

// Actions is what kitefix did on Buildkite for the job.
type Actions struct {
	// Annotated is set when the build's annotation shows this job.
	Annotated *Annotated `json:"annotated,omitempty"`
	// AnnotationSkipped says why the build was not annotated.
	AnnotationSkipped string `json:"annotation_skipped,omitempty"`
	// Retried is set when kitefix retried the job.
	Retried *Retried `json:"retried,omitempty"`
	// RetrySkipped says why the job was not retried.
	RetrySkipped string `json:"retry_skipped,omitempty"`
}

// Annotated marks when the annotation began to show the job.
type Annotated struct {
	At time.Time `json:"at"`
}

// Retried is the retry kitefix made.
type Retried struct {
	At    time.Time `json:"at"`
	JobID string    `json:"job_id"`
	// Why says which rule allowed the retry.
	Why string `json:"why"`
}

// Baseline names the passing job whose log was compared.
type Baseline struct {
	BuildNumber int    `json:"build_number"`
	JobID       string `json:"job_id"`
}

// Key is the record's key within its tenant: "job:<job id>", or
// "build:<build id>" for a build that could not be expanded into its jobs.
// It is the queue message's dedupe key.
func (r Record) Key() string {
	if r.JobID == "" {
		return "build:" + r.BuildID
	}
	return "job:" + r.JobID
}

// capResult bounds what is kept of an analyzer result (see the limits
// above). Slices stay non-nil so they encode as [].
func capResult(res loganalysis.Result) loganalysis.Result {
	var out []loganalysis.Excerpt
	lines, size := 0, 0
	for _, ex := range res.Excerpts {
		if len(out) == MaxExcerpts || lines >= MaxExcerptLines || size >= MaxExcerptBytes {
			break
		}
		text := ex.Text
		n := strings.Count(text, "\n") + 1
		if room := MaxExcerptLines - lines; n > room {
			text = firstLines(text, room)
			n = room
		}
		if room := MaxExcerptBytes - size; len(text) > room {
			text = truncateUTF8(text, room)
			n = strings.Count(text, "\n") + 1
		}
		if text == "" {
			break
		}
		out = append(out, loganalysis.Excerpt{StartLine: ex.StartLine, EndLine: ex.StartLine + int64(n) - 1, Text: text})
		lines += n
		size += len(text)
	}
	if out == nil {
		out = []loganalysis.Excerpt{}
	}
	res.Excerpts = out
	if len(res.FailingTests) > MaxFailingTests {
		res.FailingTests = res.FailingTests[:MaxFailingTests]
	}
	if len(res.Errors) > MaxErrorLocation {
		res.Errors = res.Errors[:MaxErrorLocation]
	}
	if res.FailingTests == nil {
		res.FailingTests = []loganalysis.FailingTest{}
	}
	if res.Errors == nil {
		res.Errors = []loganalysis.ErrorLocation{}
	}
	return res
}

// emptyResult is the result part of a record whose log was not analyzed.
func emptyResult() loganalysis.Result {
	return loganalysis.Result{
		Category:     loganalysis.CategoryUnknown,
		Excerpts:     []loganalysis.Excerpt{},
		FailingTests: []loganalysis.FailingTest{},
		Errors:       []loganalysis.ErrorLocation{},
	}
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for ; n > 0; n-- {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			return s
		}
		i += j + 1
	}
	return s[:i-1]
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
