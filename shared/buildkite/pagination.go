package buildkite

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// maxPages bounds how many pages a listing follows.
const maxPages = 100

// perPage is the page size we ask for (Buildkite's maximum).
const perPage = "100"

// listAll GETs first and every page its Link rel="next" headers name,
// decoding each page's JSON array and appending it to out. Each page is one
// call, with its own deadline.
func listAll[T any](ctx context.Context, c *Client, first *request) ([]T, error) {
	var all []T
	r := first
	for page := 1; ; page++ {
		var items []T
		h, err := c.doJSON(ctx, r, &items)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		next, err := c.nextPage(h)
		if err != nil {
			return nil, fmt.Errorf("buildkite: %s %s: %w", r.method, r.path(), err)
		}
		if next == nil {
			return all, nil
		}
		if page >= maxPages {
			return nil, fmt.Errorf("buildkite: %s %s: more than %d pages", r.method, first.path(), maxPages)
		}
		r = &request{method: http.MethodGet, url: next, accept: first.accept, policy: first.policy}
	}
}

// nextPage reads the Link header's rel="next" URL. It refuses a URL on
// another host than the API's, which would be sent the token.
func (c *Client) nextPage(h http.Header) (*url.URL, error) {
	raw := linkNext(h.Values("Link"))
	if raw == "" {
		return nil, nil
	}
	u, err := c.base.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad next page link: %w", err)
	}
	if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return nil, fmt.Errorf("next page link points to another host (%s)", u.Host)
	}
	return u, nil
}

// linkNext finds the rel="next" target in Link header values such as
// `<https://api.buildkite.com/v2/organizations?page=2>; rel="next"`.
func linkNext(values []string) string {
	for _, v := range values {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			if hasRel(params, "next") {
				return strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">")
			}
		}
	}
	return ""
}

func hasRel(params, want string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
			continue
		}
		for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
			if strings.EqualFold(rel, want) {
				return true
			}
		}
	}
	return false
}
