package buildkite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Build is a run of a pipeline, with its jobs.
type Build struct {
	ID          string     `json:"id"`
	Number      int        `json:"number"`
	State       string     `json:"state"`
	Branch      string     `json:"branch"`
	Commit      string     `json:"commit"`
	Message     string     `json:"message"`
	Source      string     `json:"source"`
	URL         string     `json:"url"`
	WebURL      string     `json:"web_url"`
	Pipeline    Pipeline   `json:"pipeline"`
	Jobs        []Job      `json:"jobs"`
	CreatedAt   *time.Time `json:"created_at"`
	ScheduledAt *time.Time `json:"scheduled_at"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

// Pipeline is the pipeline a build belongs to.
type Pipeline struct {
	ID     string `json:"id"`
	Slug   string `json:"slug"`
	Name   string `json:"name"`
	URL    string `json:"url"`
	WebURL string `json:"web_url"`
	// DefaultBranch is the pipeline's default branch, which a build's
	// payload carries in its pipeline object.
	DefaultBranch string `json:"default_branch"`
}

// UnmarshalJSON decodes Buildkite's payload, in either of its time formats.
func (b *Build) UnmarshalJSON(data []byte) error {
	type plain Build
	w := struct {
		*plain
		CreatedAt   *timestamp `json:"created_at"`
		ScheduledAt *timestamp `json:"scheduled_at"`
		StartedAt   *timestamp `json:"started_at"`
		FinishedAt  *timestamp `json:"finished_at"`
	}{plain: (*plain)(b)}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	b.CreatedAt, b.ScheduledAt = w.CreatedAt.ptr(), w.ScheduledAt.ptr()
	b.StartedAt, b.FinishedAt = w.StartedAt.ptr(), w.FinishedAt.ptr()
	return nil
}

var _ json.Unmarshaler = (*Build)(nil)

// buildPath is the API path of a build.
func buildPath(org, pipeline string, number int) (string, error) {
	if org == "" || pipeline == "" || number <= 0 {
		return "", fmt.Errorf("buildkite: need an organization, a pipeline and a build number > 0 (got %q, %q, %d)", org, pipeline, number)
	}
	return "/v2/organizations/" + seg(org) + "/pipelines/" + seg(pipeline) + "/builds/" + strconv.Itoa(number), nil
}

// Build fetches one build with all its jobs, retried ones included
// (read_builds).
func (c *Client) Build(ctx context.Context, org, pipeline string, number int) (Build, error) {
	b, err := c.build(ctx, org, pipeline, number)
	if err != nil {
		return Build{}, fmt.Errorf("fetch build: %w", err)
	}
	return b, nil
}

func (c *Client) build(ctx context.Context, org, pipeline string, number int) (Build, error) {
	path, err := buildPath(org, pipeline, number)
	if err != nil {
		return Build{}, err
	}
	r, err := c.newRequest(http.MethodGet, path, url.Values{"include_retried_jobs": {"true"}})
	if err != nil {
		return Build{}, err
	}
	var b Build
	if _, err := c.doJSON(ctx, r, &b); err != nil {
		return Build{}, err
	}
	return b, nil
}

// ListFailedBuilds lists the organization's builds that failed and finished
// at or after since, newest first, following pagination (read_builds).
func (c *Client) ListFailedBuilds(ctx context.Context, org string, since time.Time) ([]Build, error) {
	if org == "" {
		return nil, fmt.Errorf("list failed builds: buildkite: need an organization")
	}
	builds, err := c.listFailed(ctx, "/v2/organizations/"+seg(org)+"/builds", since)
	if err != nil {
		return nil, fmt.Errorf("list failed builds: %w", err)
	}
	return builds, nil
}

// ListPipelineFailedBuilds is ListFailedBuilds for one pipeline.
func (c *Client) ListPipelineFailedBuilds(ctx context.Context, org, pipeline string, since time.Time) ([]Build, error) {
	if org == "" || pipeline == "" {
		return nil, fmt.Errorf("list failed builds: buildkite: need an organization and a pipeline")
	}
	builds, err := c.listFailed(ctx, "/v2/organizations/"+seg(org)+"/pipelines/"+seg(pipeline)+"/builds", since)
	if err != nil {
		return nil, fmt.Errorf("list failed builds: %w", err)
	}
	return builds, nil
}

func (c *Client) listFailed(ctx context.Context, path string, since time.Time) ([]Build, error) {
	q := url.Values{
		"state":                {"failed"},
		"include_retried_jobs": {"true"},
		"per_page":             {perPage},
	}
	if !since.IsZero() {
		q.Set("finished_from", since.UTC().Format(time.RFC3339))
	}
	r, err := c.newRequest(http.MethodGet, path, q)
	if err != nil {
		return nil, err
	}
	return listAll[Build](ctx, c, r)
}
