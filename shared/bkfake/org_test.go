package bkfake_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/buildkite"
)

// A test's *testing.T is what the token fake reports to.
var _ bkfake.TB = (*testing.T)(nil)

const orgToken = "bkua_orgtest00000000000000000000000000000000"

func startOrg(t *testing.T) *bkfake.Org {
	t.Helper()
	o, err := bkfake.StartOrg(bkfake.OrgConfig{Slug: "acme", Name: "Acme", Token: orgToken, RetryPassesAfter: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("start org: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	o.AddPipeline(bkfake.Pipeline{Slug: "web", Name: "Web", DefaultBranch: "main"})
	one, zero := 1, 0
	finished := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	older := finished.Add(-time.Hour)
	for _, b := range []buildkite.Build{
		{ID: "b-7", Number: 7, State: "failed", Branch: "main", Commit: "abc", Message: "Break <things>", FinishedAt: &finished,
			Pipeline: buildkite.Pipeline{Slug: "web"}, Jobs: []buildkite.Job{
				{ID: "j-ok", Name: ":go: lint", State: "passed", ExitStatus: &zero},
				{ID: "j-bad", Name: ":go: test", State: "failed", ExitStatus: &one, StartedAt: &finished},
			}},
		{ID: "b-6", Number: 6, State: "failed", Branch: "main", FinishedAt: &older, Pipeline: buildkite.Pipeline{Slug: "web"}},
		{ID: "b-5", Number: 5, State: "passed", Branch: "main", FinishedAt: &older, Pipeline: buildkite.Pipeline{Slug: "web"}},
	} {
		if err := o.AddBuild(b); err != nil {
			t.Fatal(err)
		}
	}
	o.SetLog("j-bad", "--- :go: test\nFAIL\n")
	return o
}

// TestOrgREST drives the simulated organization with kitefix's own
// Buildkite client, as the analyze worker does.
func TestOrgREST(t *testing.T) {
	t.Parallel()
	o := startOrg(t)
	ctx := context.Background()
	bk := buildkite.New(orgToken, buildkite.WithBaseURL(o.URL()))

	b, err := bk.Build(ctx, "acme", "web", 7)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if b.WebURL != o.BuildWebURL("web", 7) || b.Jobs[1].WebURL != b.WebURL+"#j-bad" || b.Jobs[1].Type != "script" {
		t.Errorf("build addresses: web %q, job %q type %q", b.WebURL, b.Jobs[1].WebURL, b.Jobs[1].Type)
	}

	rc, err := bk.JobLog(ctx, "acme", "web", 7, "j-bad")
	if err != nil {
		t.Fatalf("job log: %v", err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	ms := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	if want := "\x1b_bk;t=" + strconv.FormatInt(ms, 10) + "\x07--- :go: test\n\x1b_bk;t=" + strconv.FormatInt(ms+37, 10) + "\x07FAIL\n"; string(raw) != want {
		t.Errorf("raw log %q, want %q", raw, want)
	}
	if _, err := bk.JobLog(ctx, "acme", "web", 7, "j-ok"); !errors.Is(err, buildkite.ErrNotFound) {
		t.Errorf("log of a job without one: %v, want not found", err)
	}

	failed, err := bk.ListFailedBuilds(ctx, "acme", time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("list failed builds: %v", err)
	}
	var numbers []int
	for _, b := range failed {
		numbers = append(numbers, b.Number)
	}
	if diff := cmp.Diff([]int{7}, numbers); diff != "" {
		t.Errorf("failed builds since 09:30 (-want +got):\n%s", diff)
	}

	for _, a := range []buildkite.Annotation{
		{Context: "kitefix", Style: "error", Body: "first"},
		{Context: "kitefix", Style: "error", Body: "second"},
		{Context: "other", Style: "info", Body: "a"},
		{Context: "other", Style: "info", Body: "b", Append: true},
	} {
		if err := bk.CreateAnnotation(ctx, "acme", "web", 7, a); err != nil {
			t.Fatalf("annotate: %v", err)
		}
	}
	want := []buildkite.Annotation{{Context: "kitefix", Style: "error", Body: "second"}, {Context: "other", Style: "info", Body: "ab"}}
	if diff := cmp.Diff(want, o.Annotations("web", 7)); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}

	nj, err := bk.RetryJob(ctx, "acme", "web", 7, "j-bad")
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !nj.IsRetry() || nj.RetrySource.JobID != "j-bad" || nj.State != "scheduled" {
		t.Errorf("retry job %+v, want a scheduled retry of j-bad", nj)
	}
	var apiErr *buildkite.APIError
	if _, err := bk.RetryJob(ctx, "acme", "web", 7, "j-bad"); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("second retry of the same job: %v, want 422", err)
	}
	waitFor(t, "the retry to pass", func() bool {
		b, _ := o.Build("web", 7)
		return b.State == "passed"
	})
	if diff := cmp.Diff([]string{"j-bad"}, o.Retries()); diff != "" {
		t.Errorf("retries (-want +got):\n%s", diff)
	}

	wrong := buildkite.New("bkua_wrong0000000000000000000000000000000000", buildkite.WithBaseURL(o.URL()))
	if _, err := wrong.Build(ctx, "acme", "web", 7); !errors.Is(err, buildkite.ErrUnauthorized) {
		t.Errorf("another token: %v, want unauthorized", err)
	}
	if _, err := bk.Build(ctx, "other-org", "web", 7); !errors.Is(err, buildkite.ErrNotFound) {
		t.Errorf("another organization: %v, want not found", err)
	}
}

// TestOrgPages checks the web pages: the build page shows the annotation
// as HTML under a policy that runs no script, escapes what the build says,
// and marks each job by its id.
func TestOrgPages(t *testing.T) {
	t.Parallel()
	o := startOrg(t)
	bk := buildkite.New(orgToken, buildkite.WithBaseURL(o.URL()))
	err := bk.CreateAnnotation(context.Background(), "acme", "web", 7, buildkite.Annotation{
		Context: "kitefix", Style: "error", Body: "#### kitefix\n\n**test** · <script>alert(1)</script>\n"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/acme/web/builds/7", http.StatusOK, []string{
			`<div class="annotation" data-style="error" data-context="kitefix" id="annotation-kitefix"><h4>kitefix</h4>`,
			"<strong>test</strong> · &lt;script&gt;alert(1)&lt;/script&gt;",
			"Break &lt;things&gt;",
			`<div class="job" id="j-bad" data-state="failed">`,
			`<pre class="log">--- :go: test`,
		}},
		{"/", http.StatusOK, []string{`href="` + o.BuildWebURL("web", 7) + `"`, "annotated"}},
		{"/acme/web/builds/99", http.StatusNotFound, []string{"Not found"}},
		{"/assets/page.css", http.StatusOK, []string{".annotation"}},
	}
	for _, tt := range tests {
		resp, err := http.Get(o.URL() + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s: %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tt.path, csp)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s lacks %q:\n%s", tt.path, w, body)
			}
		}
		if strings.Contains(string(body), "<script") {
			t.Errorf("GET %s holds a script:\n%s", tt.path, body)
		}
	}
}
