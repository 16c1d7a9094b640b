package buildkite

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// maxRecentBuilds bounds a RecentPassedBuilds page.
const maxRecentBuilds = 100

// RecentPassedBuilds returns up to n of the pipeline's most recent passed
// builds on branch, newest first, in one request (read_builds).
func (c *Client) RecentPassedBuilds(ctx context.Context, org, pipeline, branch string, n int) ([]Build, error) {
	if org == "" || pipeline == "" || branch == "" {
		return nil, fmt.Errorf("list passed builds: buildkite: need an organization, a pipeline and a branch")
	}
	n = min(max(n, 1), maxRecentBuilds)
	q := url.Values{
		"state":    {"passed"},
		"branch":   {branch},
		"per_page": {strconv.Itoa(n)},
	}
	r, err := c.newRequest(http.MethodGet, "/v2/organizations/"+seg(org)+"/pipelines/"+seg(pipeline)+"/builds", q)
	if err != nil {
		return nil, fmt.Errorf("list passed builds: %w", err)
	}
	var builds []Build
	if _, err := c.doJSON(ctx, r, &builds); err != nil {
		return nil, fmt.Errorf("list passed builds: %w", err)
	}
	return builds, nil
}

// pipelineInfo is the part of a pipeline's payload DefaultBranch reads.
type pipelineInfo struct {
	DefaultBranch string `json:"default_branch"`
}

// DefaultBranch returns the pipeline's default branch (read_pipelines).
func (c *Client) DefaultBranch(ctx context.Context, org, pipeline string) (string, error) {
	if org == "" || pipeline == "" {
		return "", fmt.Errorf("fetch pipeline: buildkite: need an organization and a pipeline")
	}
	r, err := c.newRequest(http.MethodGet, "/v2/organizations/"+seg(org)+"/pipelines/"+seg(pipeline), nil)
	if err != nil {
		return "", fmt.Errorf("fetch pipeline: %w", err)
	}
	var p pipelineInfo
	if _, err := c.doJSON(ctx, r, &p); err != nil {
		return "", fmt.Errorf("fetch pipeline: %w", err)
	}
	return p.DefaultBranch, nil
}
