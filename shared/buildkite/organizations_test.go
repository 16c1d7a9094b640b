package buildkite

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOrganizationsFollowsLinkPages(t *testing.T) {
	var srvURL string
	srv, m := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/organizations": func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if q.Get("per_page") != "100" {
				t.Errorf("per_page = %q, want 100", q.Get("per_page"))
			}
			switch q.Get("page") {
			case "":
				w.Header().Add("Link", `<`+srvURL+`/v2/organizations?page=2&per_page=100>; rel="next", <`+srvURL+`/v2/organizations?page=2&per_page=100>; rel="last"`)
				serveFixture(t, http.StatusOK, "organizations_page1.json")(w, r)
			case "2":
				w.Header().Add("Link", `<`+srvURL+`/v2/organizations?page=1&per_page=100>; rel="first", <`+srvURL+`/v2/organizations?page=1&per_page=100>; rel="prev"`)
				serveFixture(t, http.StatusOK, "organizations_page2.json")(w, r)
			default:
				t.Errorf("unexpected page %q", q.Get("page"))
			}
		},
	})
	srvURL = srv.URL
	got, err := newTestClient(srv, newFakeClock()).Organizations(context.Background())
	if err != nil {
		t.Fatalf("Organizations: %v", err)
	}
	want := []Organization{
		{
			ID: "0b461f65-e7be-4c80-888a-ef11d81fd971", Slug: "my-great-org", Name: "My Great Org",
			URL: "https://api.buildkite.com/v2/organizations/my-great-org", WebURL: "https://buildkite.com/my-great-org",
		},
		{
			ID: "5e2a7c4b-8a0d-4bbd-9f3e-1c2b3d4e5f60", Slug: "acme", Name: "Acme",
			URL: "https://api.buildkite.com/v2/organizations/acme", WebURL: "https://buildkite.com/acme",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Organizations mismatch (-want +got):\n%s", diff)
	}
	if n := m.count("GET /v2/organizations"); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestOrganizationsRefusesLinkToAnotherHost(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/organizations": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Link", `<https://evil.example.com/v2/organizations?page=2>; rel="next"`)
			serveFixture(t, http.StatusOK, "organizations_page1.json")(w, r)
		},
	})
	_, err := newTestClient(srv, newFakeClock()).Organizations(context.Background())
	if err == nil {
		t.Fatal("Organizations: no error for a next link to another host")
	}
}

func TestLinkNext(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"none", nil, ""},
		{"next and last", []string{`<https://a/x?page=2>; rel="next", <https://a/x?page=9>; rel="last"`}, "https://a/x?page=2"},
		{"prev first", []string{`<https://a/x?page=1>; rel="prev"`, `<https://a/x?page=3>; rel="next"`}, "https://a/x?page=3"},
		{"unquoted, spaced", []string{`<https://a/x?page=4> ; rel=next`}, "https://a/x?page=4"},
		{"several rels", []string{`<https://a/x?page=5>; rel="last next"`}, "https://a/x?page=5"},
		{"garbage", []string{`https://a/x; rel="next"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := linkNext(tt.values); got != tt.want {
				t.Errorf("linkNext(%q) = %q, want %q", tt.values, got, tt.want)
			}
		})
	}
}

func TestOrganizationsStopsAtPageCap(t *testing.T) {
	var srvURL string
	srv, m := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/organizations": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Link", `<`+srvURL+`/v2/organizations?page=2>; rel="next"`) // forever
			serveFixture(t, http.StatusOK, "organizations_page1.json")(w, r)
		},
	})
	srvURL = srv.URL
	if _, err := newTestClient(srv, newFakeClock()).Organizations(context.Background()); err == nil {
		t.Fatal("no error for endless pagination")
	}
	if n := m.count("GET /v2/organizations"); n != maxPages {
		t.Errorf("requests = %d, want %d", n, maxPages)
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, base := range []string{"", "api.buildkite.com", "ftp://x", "http://%zz"} {
		c := New(testToken, WithBaseURL(base), WithLimiter(nil))
		if _, err := c.Organizations(context.Background()); err == nil {
			t.Errorf("base %q: no error", base)
		}
	}
}

func TestBaseURLWithPathPrefix(t *testing.T) {
	var srvURL string
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		"GET /proxy/v2/organizations": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("page") == "" {
				w.Header().Add("Link", `<`+srvURL+`/proxy/v2/organizations?page=2>; rel="next"`)
			}
			serveFixture(t, http.StatusOK, "organizations_page1.json")(w, r)
		},
	})
	srvURL = srv.URL
	c := New(testToken, WithBaseURL(srv.URL+"/proxy/"), WithLimiter(nil), WithClock(newFakeClock()))
	orgs, err := c.Organizations(context.Background())
	if err != nil || len(orgs) != 2 {
		t.Fatalf("Organizations = %d orgs, %v; want 2, nil", len(orgs), err)
	}
}
