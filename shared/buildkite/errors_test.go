package buildkite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var kinds = []error{ErrUnauthorized, ErrForbidden, ErrNotFound, ErrRateLimited, ErrUnavailable}

// kindsOf lists the sentinel kinds err matches.
func kindsOf(err error) []error {
	var got []error
	for _, k := range kinds {
		if errors.Is(err, k) {
			got = append(got, k)
		}
	}
	return got
}

func cmpErrs() cmp.Option {
	return cmp.Comparer(func(a, b error) bool { return a == b })
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		fixture   string
		wantKinds []error
		wantMsg   string
		retryable bool
	}{
		{"401", 401, "error_401.json", []error{ErrUnauthorized},
			"Authentication required. Please supply a valid API Access Token: https://buildkite.com/docs/apis/rest-api#authentication", false},
		{"403", 403, "error_403.json", []error{ErrForbidden}, "Your access token doesn't have the read_organizations scope", false},
		{"404", 404, "error_404.json", []error{ErrNotFound}, "No build found", false},
		{"422", 422, "error_404.json", nil, "No build found", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, m := newServer(t, map[string]http.HandlerFunc{
				"GET /v2/access-token": serveFixture(t, tt.status, tt.fixture),
			})
			_, err := newTestClient(srv, newFakeClock()).AccessToken(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.wantKinds, kindsOf(err), cmpErrs()); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			want := &APIError{StatusCode: tt.status, Message: tt.wantMsg, Method: "GET", Path: "/v2/access-token"}
			if diff := cmp.Diff(want, apiErr); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(err.Error(), "fetch access token: ") {
				t.Errorf("error %q does not say what failed", err)
			}
			if got := IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			if n := m.count("GET /v2/access-token"); n != 1 {
				t.Errorf("requests = %d, want 1 (no retry)", n)
			}
		})
	}
}

func TestErrorBodyNotJSON(t *testing.T) {
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		"GET /v2/access-token": status(http.StatusBadGateway, "<html>bad gateway</html>"),
	})
	_, err := newTestClient(srv, newFakeClock(), WithMaxRetries(0)).AccessToken(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Message != "Bad Gateway" {
		t.Fatalf("err = %v, want an *APIError with the status text", err)
	}
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("other"), false},
		{&APIError{StatusCode: 503}, true},
		{&APIError{StatusCode: 429}, true},
		{&APIError{StatusCode: 401}, false},
		{fmt.Errorf("fetch: %w", &APIError{StatusCode: 500}), true},
		{&unavailableError{msg: "x", cause: context.DeadlineExceeded}, true},
		{fmt.Errorf("x: %w", context.Canceled), false},
	}
	for _, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// failingTransport fails every request with an error that names the token,
// as a careless transport or proxy might.
type failingTransport struct{ calls int }

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls++
	return nil, fmt.Errorf("proxy refused %s with header %q", r.URL, r.Header.Get("Authorization"))
}

func TestTokenNeverInErrorsOrLogs(t *testing.T) {
	echo := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("RateLimit-Reset", "1")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"message":"token %s is not valid (%s)"}`, testToken, r.Header.Get("Authorization"))
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    []Option
	}{
		{"401 echoing the token", echo(401), nil},
		{"429 echoing the token", echo(429), nil},
		{"500 echoing the token", echo(500), nil},
		{"transport error naming the token", nil, []Option{WithHTTPClient(&http.Client{Transport: &failingTransport{}})}},
		{"timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, []Option{WithTimeout(30 * time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			if h == nil {
				h = func(http.ResponseWriter, *http.Request) { t.Error("the transport should have failed") }
			}
			srv, _ := newServer(t, map[string]http.HandlerFunc{"GET /v2/access-token": h})
			var logs bytes.Buffer
			opts := append([]Option{WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}, tt.opts...)
			_, err := newTestClient(srv, newFakeClock(), opts...).AccessToken(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error contains the token: %v", err)
			}
			if strings.Contains(fmt.Sprintf("%+v %#v", err, err), testToken) {
				t.Errorf("formatted error contains the token")
			}
			if strings.Contains(logs.String(), testToken) {
				t.Errorf("logs contain the token:\n%s", logs.String())
			}
		})
	}
}
