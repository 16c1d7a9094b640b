package buildkite

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFlakyTests(t *testing.T) {
	t.Parallel()
	srv, m := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/analytics/organizations/my-great-org/suites": serveFixture(t, http.StatusOK, "suites.json"),
		"GET /v2/analytics/organizations/my-great-org/suites/my-suite/tests": func(w http.ResponseWriter, r *http.Request) {
			if got := r.URL.Query().Get("label"); got != "flaky" {
				t.Errorf("label = %q, want flaky", got)
			}
			serveFixture(t, http.StatusOK, "tests_flaky.json")(w, r)
		},
	})
	got, err := newTestClient(srv, newFakeClock()).FlakyTests(context.Background(), "my-great-org")
	if err != nil {
		t.Fatalf("FlakyTests: %v", err)
	}
	want := []Test{{
		ID:       "01867216-8478-7fde-a55a-0300f88bb49b",
		WebURL:   "https://buildkite.com/organizations/my-great-org/analytics/suites/my-suite/tests/01867216-8478-7fde-a55a-0300f88bb49b",
		Scope:    "User#email",
		Name:     "is correctly formatted",
		Location: "./spec/models/user_spec.rb:42",
		FileName: "./spec/models/user_spec.rb",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FlakyTests (-want +got):\n%s", diff)
	}
	if n := m.count("GET /v2/analytics/organizations/my-great-org/suites/my-suite/tests"); n != 1 {
		t.Errorf("flaky tests requested %d times, want 1", n)
	}
}

func TestFlakyTestsWithoutTestEngine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"no suites", status(http.StatusOK, "[]"), nil},
		{"no read_suites scope", serveFixture(t, http.StatusForbidden, "error_403.json"), ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := newServer(t, map[string]http.HandlerFunc{
				"GET /v2/analytics/organizations/my-great-org/suites": tt.handler,
			})
			got, err := newTestClient(srv, newFakeClock()).FlakyTests(context.Background(), "my-great-org")
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("FlakyTests: error %v, want %v", err, tt.want)
			}
			if len(got) != 0 {
				t.Errorf("FlakyTests = %v, want none", got)
			}
		})
	}
}

func TestRecentPassedBuilds(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/organizations/my-great-org/pipelines/my-pipeline/builds": func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			got := map[string]string{"state": q.Get("state"), "branch": q.Get("branch"), "per_page": q.Get("per_page")}
			want := map[string]string{"state": "passed", "branch": "feature/x", "per_page": "5"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			serveFixture(t, http.StatusOK, "builds_failed.json")(w, r)
		},
	})
	builds, err := newTestClient(srv, newFakeClock()).RecentPassedBuilds(context.Background(), "my-great-org", "my-pipeline", "feature/x", 5)
	if err != nil {
		t.Fatalf("RecentPassedBuilds: %v", err)
	}
	if len(builds) == 0 || builds[0].Number == 0 {
		t.Errorf("RecentPassedBuilds = %+v, want the fixture's builds", builds)
	}
	if _, err := newTestClient(srv, newFakeClock()).RecentPassedBuilds(context.Background(), "my-great-org", "my-pipeline", "", 5); err == nil {
		t.Errorf("RecentPassedBuilds without a branch: no error")
	}
}

func TestDefaultBranch(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/organizations/my-great-org/pipelines/my-pipeline": serveFixture(t, http.StatusOK, "pipeline.json"),
		"GET /v2/organizations/my-great-org/pipelines/gone":        serveFixture(t, http.StatusNotFound, "error_404.json"),
	})
	c := newTestClient(srv, newFakeClock())
	got, err := c.DefaultBranch(context.Background(), "my-great-org", "my-pipeline")
	if err != nil || got != "main" {
		t.Errorf("DefaultBranch = %q, %v; want main", got, err)
	}
	if _, err := c.DefaultBranch(context.Background(), "my-great-org", "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DefaultBranch of a missing pipeline: error %v, want ErrNotFound", err)
	}
}
