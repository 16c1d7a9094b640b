package buildkite

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// maxSuites bounds how many Test Engine suites FlakyTests reads: each costs
// a request against the token's 50 a minute.
const maxSuites = 5

// Suite is a Test Engine test suite.
type Suite struct {
	ID     string `json:"id"`
	Slug   string `json:"slug"`
	Name   string `json:"name"`
	WebURL string `json:"web_url"`
}

// Test is a test Test Engine knows.
type Test struct {
	ID       string `json:"id"`
	WebURL   string `json:"web_url"`
	Scope    string `json:"scope"`
	Name     string `json:"name"`
	Location string `json:"location"`
	FileName string `json:"file_name"`
}

// Suites lists the organization's Test Engine suites (read_suites).
func (c *Client) Suites(ctx context.Context, org string) ([]Suite, error) {
	if org == "" {
		return nil, fmt.Errorf("list suites: buildkite: need an organization")
	}
	r, err := c.newRequest(http.MethodGet, "/v2/analytics/organizations/"+seg(org)+"/suites", url.Values{"per_page": {perPage}})
	if err != nil {
		return nil, fmt.Errorf("list suites: %w", err)
	}
	suites, err := listAll[Suite](ctx, c, r)
	if err != nil {
		return nil, fmt.Errorf("list suites: %w", err)
	}
	return suites, nil
}

// SuiteFlakyTests lists the tests of a suite labelled flaky (read_suites).
func (c *Client) SuiteFlakyTests(ctx context.Context, org, suite string) ([]Test, error) {
	if org == "" || suite == "" {
		return nil, fmt.Errorf("list flaky tests: buildkite: need an organization and a suite")
	}
	r, err := c.newRequest(http.MethodGet, "/v2/analytics/organizations/"+seg(org)+"/suites/"+seg(suite)+"/tests",
		url.Values{"label": {"flaky"}, "per_page": {perPage}})
	if err != nil {
		return nil, fmt.Errorf("list flaky tests: %w", err)
	}
	tests, err := listAll[Test](ctx, c, r)
	if err != nil {
		return nil, fmt.Errorf("list flaky tests: %w", err)
	}
	return tests, nil
}

// FlakyTests lists the tests Test Engine labels flaky in the organization's
// suites (at most maxSuites of them). An organization without Test Engine
// has no suites and so no flaky tests.
func (c *Client) FlakyTests(ctx context.Context, org string) ([]Test, error) {
	suites, err := c.Suites(ctx, org)
	if err != nil {
		return nil, err
	}
	var all []Test
	for i, s := range suites {
		if i == maxSuites {
			break
		}
		tests, err := c.SuiteFlakyTests(ctx, org, s.Slug)
		if err != nil {
			return nil, err
		}
		all = append(all, tests...)
	}
	return all, nil
}
