package buildkite

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Organization is a Buildkite organization the token reaches.
type Organization struct {
	ID     string `json:"id"`
	Slug   string `json:"slug"`
	Name   string `json:"name"`
	URL    string `json:"url"`
	WebURL string `json:"web_url"`
}

// Organizations lists every organization the token reaches, following
// pagination (read_organizations).
func (c *Client) Organizations(ctx context.Context) ([]Organization, error) {
	r, err := c.newRequest(http.MethodGet, "/v2/organizations", url.Values{"per_page": {perPage}})
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	orgs, err := listAll[Organization](ctx, c, r)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	return orgs, nil
}
