package buildkite

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func intPtr(v int) *int { return &v }

// wantBuild42 is testdata/build.json decoded.
func wantBuild42(t *testing.T) Build {
	t.Helper()
	const base = "https://api.buildkite.com/v2/organizations/my-great-org/pipelines/my-pipeline/builds/42/jobs/"
	const web = "https://buildkite.com/my-great-org/my-pipeline/builds/42#"
	return Build{
		ID:      "01908131-7d9f-495e-a17b-80ed31276810",
		Number:  42,
		State:   "failed",
		Branch:  "main",
		Commit:  "abcd0b72a1e580e90712cdd9eb26d3fb41cd09c8",
		Message: "Bumping to version 0.2-beta.6",
		Source:  "webhook",
		URL:     "https://api.buildkite.com/v2/organizations/my-great-org/pipelines/my-pipeline/builds/42",
		WebURL:  "https://buildkite.com/my-great-org/my-pipeline/builds/42",
		Pipeline: Pipeline{
			ID: "849411f9-9e6d-4739-a0d8-e247088e9b52", Slug: "my-pipeline", Name: "My Pipeline",
			URL:    "https://api.buildkite.com/v2/organizations/my-great-org/pipelines/my-pipeline",
			WebURL: "https://buildkite.com/my-great-org/my-pipeline", DefaultBranch: "main",
		},
		Jobs: []Job{
			{
				ID: "b63254c0-3271-4a98-8270-7cfbd6c2f14e", Type: "script", Name: ":go: test", Label: ":go: test",
				StepKey: "test", State: "failed", Command: "go test ./...",
				WebURL:     web + "b63254c0-3271-4a98-8270-7cfbd6c2f14e",
				LogURL:     base + "b63254c0-3271-4a98-8270-7cfbd6c2f14e/log",
				RawLogURL:  base + "b63254c0-3271-4a98-8270-7cfbd6c2f14e/log.txt",
				ExitStatus: intPtr(1), Retried: true, RetriedInJobID: "0190c9a3-8f4f-4b3c-9d1e-6a2b5c7d8e9f",
				CreatedAt:   timePtr(mustTime(t, "2015-05-09T21:05:59.874Z")),
				ScheduledAt: timePtr(mustTime(t, "2015-05-09T21:05:59.874Z")),
				RunnableAt:  timePtr(mustTime(t, "2015-05-09T21:06:00Z")),
				StartedAt:   timePtr(mustTime(t, "2015-05-09T21:06:01.874Z")),
				FinishedAt:  timePtr(mustTime(t, "2015-05-09T21:07:59.874Z")),
			},
			{
				ID: "0190c9a3-8f4f-4b3c-9d1e-6a2b5c7d8e9f", Type: "script", Name: ":go: test", Label: ":go: test",
				StepKey: "test", State: "failed", Command: "go test ./...",
				WebURL:       web + "0190c9a3-8f4f-4b3c-9d1e-6a2b5c7d8e9f",
				LogURL:       base + "0190c9a3-8f4f-4b3c-9d1e-6a2b5c7d8e9f/log",
				RawLogURL:    base + "0190c9a3-8f4f-4b3c-9d1e-6a2b5c7d8e9f/log.txt",
				ExitStatus:   intPtr(1),
				RetriesCount: 1, RetryType: "manual",
				RetrySource: &RetrySource{JobID: "b63254c0-3271-4a98-8270-7cfbd6c2f14e", RetryType: "manual"},
				CreatedAt:   timePtr(mustTime(t, "2015-05-09T21:08:10Z")),
				ScheduledAt: timePtr(mustTime(t, "2015-05-09T21:08:10Z")),
				StartedAt:   timePtr(mustTime(t, "2015-05-09T21:08:12Z")),
				FinishedAt:  timePtr(mustTime(t, "2015-05-09T21:09:40Z")),
			},
			{
				ID: "4f2a5d8c-1b3e-4c6f-9a7d-2e8b0c1d3f5a", Type: "script", Name: ":eslint: lint", Label: ":eslint: lint",
				StepKey: "lint", State: "failed", Command: "npm run lint",
				WebURL:     web + "4f2a5d8c-1b3e-4c6f-9a7d-2e8b0c1d3f5a",
				RawLogURL:  base + "4f2a5d8c-1b3e-4c6f-9a7d-2e8b0c1d3f5a/log.txt",
				ExitStatus: intPtr(2), SoftFailed: true,
				ParallelGroupIndex: intPtr(0), ParallelGroupTotal: intPtr(2),
				CreatedAt:  timePtr(mustTime(t, "2015-05-09T21:05:59.874Z")),
				StartedAt:  timePtr(mustTime(t, "2015-05-09T21:06:02Z")),
				FinishedAt: timePtr(mustTime(t, "2015-05-09T21:06:30Z")),
			},
			{ID: "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", Type: "waiter"},
		},
		CreatedAt:   timePtr(mustTime(t, "2015-05-09T21:05:59.874Z")),
		ScheduledAt: timePtr(mustTime(t, "2015-05-09T21:05:59.874Z")),
		StartedAt:   timePtr(mustTime(t, "2015-05-09T21:05:59.874Z")),
		FinishedAt:  timePtr(mustTime(t, "2015-05-09T21:09:40Z")),
	}
}

func TestBuild(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/organizations/my-great-org/pipelines/my-pipeline/builds/42": func(w http.ResponseWriter, r *http.Request) {
			if got := r.URL.Query().Get("include_retried_jobs"); got != "true" {
				t.Errorf("include_retried_jobs = %q, want true", got)
			}
			serveFixture(t, http.StatusOK, "build.json")(w, r)
		},
	})
	got, err := newTestClient(srv, newFakeClock()).Build(context.Background(), "my-great-org", "my-pipeline", 42)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if diff := cmp.Diff(wantBuild42(t), got); diff != "" {
		t.Errorf("Build mismatch (-want +got):\n%s", diff)
	}
	if got.Jobs[0].IsRetry() || !got.Jobs[1].IsRetry() {
		t.Errorf("IsRetry = %v, %v; want false, true", got.Jobs[0].IsRetry(), got.Jobs[1].IsRetry())
	}
}

func TestBuildEscapesPathSegments(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/organizations/a%2Fb/pipelines/p%20q/builds/7": serveFixture(t, http.StatusOK, "build.json"),
	})
	if _, err := newTestClient(srv, newFakeClock()).Build(context.Background(), "a/b", "p q", 7); err != nil {
		t.Fatalf("Build: %v", err)
	}
}

func TestBuildRejectsBadArguments(t *testing.T) {
	c := New(testToken, WithBaseURL("http://127.0.0.1:1"), WithLimiter(nil))
	tests := []struct {
		org, pipeline string
		number        int
	}{{"", "p", 1}, {"o", "", 1}, {"o", "p", 0}}
	for _, tt := range tests {
		if _, err := c.Build(context.Background(), tt.org, tt.pipeline, tt.number); err == nil {
			t.Errorf("Build(%q, %q, %d): no error", tt.org, tt.pipeline, tt.number)
		}
	}
}

func TestListFailedBuilds(t *testing.T) {
	since := time.Date(2015, 5, 9, 21, 0, 0, 0, time.FixedZone("AEST", 10*3600))
	check := func(t *testing.T, r *http.Request) {
		q := r.URL.Query()
		want := map[string]string{
			"state": "failed", "finished_from": "2015-05-09T11:00:00Z",
			"include_retried_jobs": "true", "per_page": "100",
		}
		for k, v := range want {
			if q.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, q.Get(k), v)
			}
		}
	}
	tests := []struct {
		name  string
		route string
		call  func(*Client) ([]Build, error)
	}{
		{
			name:  "organization",
			route: "GET /v2/organizations/my-great-org/builds",
			call: func(c *Client) ([]Build, error) {
				return c.ListFailedBuilds(context.Background(), "my-great-org", since)
			},
		},
		{
			name:  "pipeline",
			route: "GET /v2/organizations/my-great-org/pipelines/my-pipeline/builds",
			call: func(c *Client) ([]Build, error) {
				return c.ListPipelineFailedBuilds(context.Background(), "my-great-org", "my-pipeline", since)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, map[string]http.HandlerFunc{
				tt.route: func(w http.ResponseWriter, r *http.Request) {
					check(t, r)
					serveFixture(t, http.StatusOK, "builds_failed.json")(w, r)
				},
			})
			got, err := tt.call(newTestClient(srv, newFakeClock()))
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var numbers []int
			for _, b := range got {
				numbers = append(numbers, b.Number)
			}
			if diff := cmp.Diff([]int{42, 41}, numbers); diff != "" {
				t.Errorf("build numbers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantBuild42(t), got[0]); diff != "" {
				t.Errorf("first build (-want +got):\n%s", diff)
			}
		})
	}
}
