package analysis

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

func TestMarkdownGroupsByFingerprint(t *testing.T) {
	t.Parallel()
	rep := BuildReport{}
	for i, fp := range []string{"aaa", "bbb", "aaa"} {
		rec := Record{JobID: string(rune('x' + i)), JobName: "step " + fp, Links: Links{Job: "https://buildkite.com/acme/web/builds/1#" + string(rune('x'+i))}}
		rec.Result = loganalysis.Result{Category: "test", Summary: "1 failing test(s): TestFoo", Fingerprint: fp,
			Excerpts:     []loganalysis.Excerpt{{StartLine: 10, EndLine: 11, Text: "--- FAIL: TestFoo\n```\nAWS_SECRET_ACCESS_KEY=abc123secret"}},
			FailingTests: []loganalysis.FailingTest{{Name: "TestFoo"}}}
		rep = rep.with(reportJob(rec))
	}
	md := rep.Markdown()
	if got := strings.Count(md, "**test**"); got != 2 {
		t.Errorf("%d groups; want 2:\n%s", got, md)
	}
	if !strings.Contains(md, "2 distinct failures in 3 failed jobs") {
		t.Errorf("no header with the counts:\n%s", md)
	}
	if !strings.Contains(md, "Jobs: [step aaa](https://buildkite.com/acme/web/builds/1#x), [step aaa](https://buildkite.com/acme/web/builds/1#z)") {
		t.Errorf("jobs of one fingerprint are not linked together:\n%s", md)
	}
	if strings.Contains(md, "abc123secret") {
		t.Errorf("the annotation holds a secret value:\n%s", md)
	}
	if !strings.Contains(md, "````text") {
		t.Errorf("the excerpt's fence is not longer than its backtick run:\n%s", md)
	}
}

func TestMarkdownStaysUnderLimit(t *testing.T) {
	t.Parallel()
	rep := BuildReport{}
	for i := range maxReportJobs {
		rec := Record{JobID: strings.Repeat("j", 8) + string(rune('A'+i%26)) + string(rune('a'+i/26)), JobName: "job"}
		rec.Result = loganalysis.Result{Category: "compile", Summary: strings.Repeat("s", 200), Fingerprint: rec.JobID,
			Excerpts: []loganalysis.Excerpt{{StartLine: 1, EndLine: 30, Text: strings.Repeat(strings.Repeat("x", 130)+"\n", 30)}}}
		rep = rep.with(reportJob(rec))
	}
	md := rep.Markdown()
	if len(md) >= MaxAnnotationBytes {
		t.Errorf("annotation is %d bytes; want under %d", len(md), MaxAnnotationBytes)
	}
	if !strings.Contains(md, "more failures not shown") {
		t.Errorf("the cut is not said")
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"token bkua_0123456789abcdef0123456789abcdef01234567 here", "token [REDACTED] here"},
		{"export GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123", "export GITHUB_TOKEN=[REDACTED]"},
		{"Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer [REDACTED]"},
		{"git clone https://user:hunter22@github.com/acme/x", "git clone https://[REDACTED]@github.com/acme/x"},
		{`{"password": "hunter2"}`, `{"password": [REDACTED]}`},
		{"key AKIAABCDEFGHIJKLMNOP", "key [REDACTED]"},
		{"--- FAIL: TestParseToken (0.00s)", "--- FAIL: TestParseToken (0.00s)"},
		{"FAIL: TestToken: expected 3", "FAIL: TestToken: expected 3"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCapResult(t *testing.T) {
	t.Parallel()
	var res loganalysis.Result
	for i := range 8 {
		res.Excerpts = append(res.Excerpts, loganalysis.Excerpt{StartLine: int64(i * 100), EndLine: int64(i*100 + 39), Text: strings.TrimSuffix(strings.Repeat("line\n", 40), "\n")})
	}
	got := capResult(res)
	var lines []int
	total := 0
	for _, ex := range got.Excerpts {
		n := strings.Count(ex.Text, "\n") + 1
		lines = append(lines, n)
		total += len(ex.Text)
		if ex.EndLine-ex.StartLine+1 != int64(n) {
			t.Errorf("excerpt %d-%d has %d lines", ex.StartLine, ex.EndLine, n)
		}
	}
	if diff := cmp.Diff([]int{40, 40}, lines); diff != "" {
		t.Errorf("excerpt lines (-want +got):\n%s", diff)
	}
	big := loganalysis.Result{Excerpts: []loganalysis.Excerpt{{StartLine: 1, EndLine: 2, Text: strings.Repeat("é", 10000) + "\nx"}}}
	if got := capResult(big); len(got.Excerpts[0].Text) > MaxExcerptBytes || !strings.HasSuffix(got.Excerpts[0].Text, "é") {
		t.Errorf("byte cap: %d bytes, ends %q", len(got.Excerpts[0].Text), got.Excerpts[0].Text[len(got.Excerpts[0].Text)-2:])
	}
	if got.FailingTests == nil || got.Errors == nil {
		t.Errorf("nil slices after capping")
	}
}

// TestMarkdownOneFailureInEveryJob: a wide parallel step fails the same way
// in all its jobs, with long names, long test names and links that hold
// parentheses: the failure is shown with its excerpt, the jobs are named up
// to a bound, and the links stay links.
func TestMarkdownOneFailureInEveryJob(t *testing.T) {
	t.Parallel()
	rep := BuildReport{}
	var tests []loganalysis.FailingTest
	for i := range maxReportTests {
		tests = append(tests, loganalysis.FailingTest{Name: fmt.Sprintf("Test%d", i) + strings.Repeat("Sub/", 100)})
	}
	for i := range maxReportJobs {
		id := fmt.Sprintf("0190c9a3-8f4f-4b3c-9d1e-%012d", i)
		rec := Record{JobID: id, JobName: ":rspec: " + strings.Repeat("very long label ", 100) + fmt.Sprint(i)}
		rec.Links.Job = "https://buildkite.com/acme/web/builds/123#" + id + "(x) y"
		rec.Result = loganalysis.Result{Category: "test", Summary: "1 failing test", Fingerprint: "same", FailingTests: tests,
			Excerpts: []loganalysis.Excerpt{{StartLine: 1, EndLine: 3, Text: "expected 1, got 2"}}}
		rep = rep.with(reportJob(rec))
	}
	md := rep.Markdown()
	if len(md) >= MaxAnnotationBytes/4 {
		t.Errorf("annotation is %d bytes; want a bounded group, under %d", len(md), MaxAnnotationBytes/4)
	}
	for _, want := range []string{"expected 1, got 2", "and 180 more", "#0190c9a3-8f4f-4b3c-9d1e-000000000000%28x%29%20y)"} {
		if !strings.Contains(md, want) {
			t.Errorf("annotation lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "not shown") {
		t.Errorf("the one failure was cut:\n%s", md)
	}
}
