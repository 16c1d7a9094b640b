package buildkite

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestClientFollowsNoRedirect: a redirect, whatever its target, fails the
// call with its status, and the target never sees a request (nor the token).
func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tls    bool // the API is served over https, the target over http
		status int
	}{
		{name: "302 to another port", status: http.StatusFound},
		{name: "301 to another port", status: http.StatusMovedPermanently},
		{name: "307 to another port", status: http.StatusTemporaryRedirect},
		{name: "308 to another port", status: http.StatusPermanentRedirect},
		{name: "https to http", tls: true, status: http.StatusFound},
		{name: "https to http, 307", tls: true, status: http.StatusTemporaryRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var targetHits atomic.Int32
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				targetHits.Add(1)
				serveFixture(t, http.StatusOK, "access_token.json")(w, r)
			}))
			t.Cleanup(target.Close)

			var apiHits atomic.Int32
			redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				apiHits.Add(1)
				http.Redirect(w, r, target.URL+r.URL.Path, tt.status)
			})
			var api *httptest.Server
			if tt.tls {
				api = httptest.NewTLSServer(redirect)
			} else {
				api = httptest.NewServer(redirect)
			}
			t.Cleanup(api.Close)
			// The caller's client would follow redirects: the Client must not.
			hc := api.Client()
			c := New(testToken, WithBaseURL(api.URL), WithHTTPClient(hc),
				WithClock(newFakeClock()), WithLimiter(nil))

			_, err := c.AccessToken(context.Background())
			if err == nil {
				t.Fatal("AccessToken followed the redirect and succeeded")
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Fatalf("error = %v, want an APIError with status %d", err, tt.status)
			}
			msg := err.Error()
			for _, want := range []string{http.StatusText(tt.status), "redirect not followed"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, testToken) || strings.Contains(msg, target.URL) {
				t.Errorf("error %q names the token or the redirect's target", msg)
			}
			if IsRetryable(err) {
				t.Errorf("a redirect is retryable: %v", err)
			}
			if got := targetHits.Load(); got != 0 {
				t.Errorf("the redirect's target got %d requests, want 0", got)
			}
			if got := apiHits.Load(); got != 1 {
				t.Errorf("the API got %d requests, want 1 (no retry)", got)
			}
			if hc.CheckRedirect != nil {
				t.Error("New changed the caller's http.Client")
			}
		})
	}
}
