package buildkite

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRetryJob(t *testing.T) {
	const route = "PUT /v2/organizations/my-great-org/pipelines/my-pipeline/builds/42/jobs/0190c9a3-8f4f-4b3c-9d1e-6a2b5c7d8e9f/retry"
	srv, _ := newServer(t, map[string]http.HandlerFunc{route: serveFixture(t, http.StatusOK, "job_retry.json")})
	got, err := newTestClient(srv, newFakeClock()).RetryJob(context.Background(), "my-great-org", "my-pipeline", 42, "0190c9a3-8f4f-4b3c-9d1e-6a2b5c7d8e9f")
	if err != nil {
		t.Fatalf("RetryJob: %v", err)
	}
	const base = "https://api.buildkite.com/v2/organizations/my-great-org/pipelines/my-pipeline/builds/42/jobs/0190d1e2-3f4a-4b5c-8d6e-7f8091a2b3c4"
	want := Job{
		ID: "0190d1e2-3f4a-4b5c-8d6e-7f8091a2b3c4", Type: "script", Name: ":go: test", StepKey: "test",
		State: "scheduled", Command: "go test ./...",
		WebURL:       "https://buildkite.com/my-great-org/my-pipeline/builds/42#0190d1e2-3f4a-4b5c-8d6e-7f8091a2b3c4",
		LogURL:       base + "/log",
		RawLogURL:    base + "/log.txt",
		RetriesCount: 2, RetryType: "manual",
		RetrySource: &RetrySource{JobID: "0190c9a3-8f4f-4b3c-9d1e-6a2b5c7d8e9f", RetryType: "manual"},
		CreatedAt:   timePtr(mustTime(t, "2015-05-09T21:10:00Z")),
		ScheduledAt: timePtr(mustTime(t, "2015-05-09T21:10:00Z")),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RetryJob mismatch (-want +got):\n%s", diff)
	}
}

func TestRetryJobRetriedOn5xx(t *testing.T) {
	const route = "PUT /v2/organizations/o/pipelines/p/builds/1/jobs/j/retry"
	srv, m := newServer(t, map[string]http.HandlerFunc{
		route: sequence(status(503, ""), serveFixture(t, http.StatusOK, "job_retry.json")),
	})
	got, err := newTestClient(srv, newFakeClock()).RetryJob(context.Background(), "o", "p", 1, "j")
	if err != nil {
		t.Fatalf("RetryJob: %v", err)
	}
	if got.ID != "0190d1e2-3f4a-4b5c-8d6e-7f8091a2b3c4" || m.count(route) != 2 {
		t.Errorf("got job %q after %d requests; want the new job after 2", got.ID, m.count(route))
	}
}
