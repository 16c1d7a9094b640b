package analysis_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
)

// callKind names a Buildkite request by what it is for.
func callKind(call string) string {
	switch {
	case strings.HasSuffix(call, "/log"):
		return "log"
	case strings.HasSuffix(call, "/retry"):
		return "retry"
	case strings.HasSuffix(call, "/annotations"):
		return "annotation"
	case strings.Contains(call, "/analytics/"):
		return "test-engine"
	case strings.HasSuffix(call, "/builds"):
		return "passed-builds"
	case strings.Contains(call, "/builds/"):
		return "build"
	}
	return "pipeline"
}

// TestRequestsPerJob counts the Buildkite requests each kind of job costs
// with the baseline on: the build, the log and the annotation, plus a
// retry, plus what the baseline and the flaky-test lookup need only when
// they can change the outcome.
func TestRequestsPerJob(t *testing.T) {
	t.Parallel()
	passingBuild := func(number int, jobIDs ...string) buildkite.Build {
		b := analysistest.FailedBuild(testOrg, "web", number, time.Now().Add(-time.Hour), jobIDs...)
		b.State = "passed"
		for i := range b.Jobs {
			b.Jobs[i].State, b.Jobs[i].ExitStatus = "passed", nil
		}
		return b
	}
	tests := []struct {
		name string
		// jobs are analyzed one after another by the same worker; the
		// requests of the last are counted.
		jobs      []string
		logs      map[string]string
		autoRetry bool
		// spent requests are taken from the token's minute first.
		spent int
		// noDefaultBranch drops the pipeline's default branch from the
		// build payload.
		noDefaultBranch bool
		// branch of the failed build; "" is the default branch.
		branch string
		// noWriteBuilds drops the write_builds scope; isRetry makes the
		// failed job a retry of another.
		noWriteBuilds, isRetry bool
		want                   []string
	}{
		{
			name: "agent lost: retried", jobs: []string{"j-1"}, logs: map[string]string{"j-1": lostLog}, autoRetry: true,
			want: []string{"build", "passed-builds", "log", "retry", "annotation"},
		},
		{
			name: "test failure, retry allowed: Test Engine asked", jobs: []string{"j-1"}, logs: map[string]string{"j-1": testLog}, autoRetry: true,
			want: []string{"build", "passed-builds", "log", "test-engine", "annotation"},
		},
		{
			name: "test failure, AUTO_RETRY off: Test Engine not asked", jobs: []string{"j-1"}, logs: map[string]string{"j-1": testLog},
			want: []string{"build", "passed-builds", "log", "annotation"},
		},
		{
			name: "test failure, no write_builds: Test Engine not asked", jobs: []string{"j-1"}, logs: map[string]string{"j-1": testLog},
			autoRetry: true, noWriteBuilds: true,
			want: []string{"build", "passed-builds", "log"},
		},
		{
			name: "test failure of a retry: Test Engine not asked", jobs: []string{"j-1"}, logs: map[string]string{"j-1": testLog},
			autoRetry: true, isRetry: true,
			want: []string{"build", "passed-builds", "log", "annotation"},
		},
		{
			name: "second job of the pipeline: passed builds cached", jobs: []string{"j-1", "j-2"},
			logs: map[string]string{"j-1": testLog, "j-2": testLog},
			want: []string{"build", "log", "annotation"},
		},
		{
			name: "feature branch: its passed builds, then the default branch's", jobs: []string{"j-1"}, logs: map[string]string{"j-1": testLog},
			branch: "feature",
			want:   []string{"build", "passed-builds", "passed-builds", "log", "annotation"},
		},
		{
			name: "feature branch, second job: both lists cached", jobs: []string{"j-1", "j-2"},
			logs: map[string]string{"j-1": testLog, "j-2": testLog}, branch: "feature",
			want: []string{"build", "log", "annotation"},
		},
		{
			name: "default branch missing from the payload: read from the pipeline", jobs: []string{"j-1"}, logs: map[string]string{"j-1": testLog},
			noDefaultBranch: true, branch: "feature",
			want: []string{"build", "passed-builds", "pipeline", "passed-builds", "log", "annotation"},
		},
		{
			name: "budget low: no baseline", jobs: []string{"j-1"}, logs: map[string]string{"j-1": testLog},
			spent: analysis.RequestsPerMinute - 10,
			want:  []string{"build", "log", "annotation"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caps := allCaps
			if tt.noWriteBuilds {
				caps = connection.Capabilities{}
			}
			e := newEnv(t, caps, func(c *analysis.Config) { c.NoBaseline, c.AutoRetry = false, tt.autoRetry })
			// A passed build on the default branch with a job of another
			// step: the baseline lookup finds no passing job of the step.
			e.bk.AddBuild(passingBuild(1, "p-9"))
			b := analysistest.FailedBuild(testOrg, "web", 2, time.Now(), tt.jobs...)
			if tt.branch != "" {
				b.Branch = tt.branch
			}
			for i := range b.Jobs {
				b.Jobs[i].StepKey = "unit-" + b.Jobs[i].ID
			}
			if tt.isRetry {
				b.Jobs[0].RetrySource = &buildkite.RetrySource{JobID: "j-0", RetryType: "manual"}
			}
			if tt.noDefaultBranch {
				b.Pipeline.DefaultBranch = ""
			}
			e.bk.AddBuild(b)
			for id, text := range tt.logs {
				e.bk.SetLogText(id, text)
			}
			window := time.Now().Truncate(time.Minute)
			for range tt.spent {
				if _, err := e.store.TakeRequest(context.Background(), analysis.BudgetKey(testToken), window, analysis.RequestsPerMinute); err != nil {
					t.Fatal(err)
				}
			}
			var calls []string
			for _, id := range tt.jobs {
				before := len(e.bk.Calls())
				if out := e.w.HandleBody(context.Background(), body(t, jobMessage(2, id)), 1); out.Verdict != analysis.Done {
					t.Fatalf("%s: outcome %v: %v", id, out, out.Err)
				}
				calls = nil
				for _, c := range e.bk.Calls()[before:] {
					calls = append(calls, callKind(c))
				}
			}
			if diff := cmp.Diff(tt.want, calls); diff != "" {
				t.Errorf("requests of the last job (-want +got):\n%s\n%v", diff, e.bk.Calls())
			}
			if rec := e.analysis(t, tt.jobs[len(tt.jobs)-1]); rec.Requests != len(tt.want) {
				t.Errorf("recorded requests %d; want %d", rec.Requests, len(tt.want))
			}
		})
	}
}

// TestConcurrentJobsShareOnePassedBuildsList: the failed jobs of one build,
// analyzed at once, wait for one lookup of the pipeline's passed builds.
func TestConcurrentJobsShareOnePassedBuildsList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allCaps, func(c *analysis.Config) { c.NoBaseline = false })
	ids := []string{"c-1", "c-2", "c-3", "c-4", "c-5", "c-6"}
	e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 3, time.Now(), ids...))
	for _, id := range ids {
		e.bk.SetLogText(id, testLog)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if out := e.w.HandleBody(context.Background(), body(t, jobMessage(3, id)), 1); out.Verdict != analysis.Done {
				t.Errorf("%s: outcome %v: %v", id, out, out.Err)
			}
		})
	}
	wg.Wait()
	lists := 0
	for _, c := range e.bk.Calls() {
		if callKind(c) == "passed-builds" {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("%d lookups of passed builds for %d jobs of one build; want 1", lists, len(ids))
	}
}
