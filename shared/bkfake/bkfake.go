// Package bkfake simulates Buildkite for tests and for `kitefix serve --demo`.
//
// It holds three things:
//
//   - Server, a fake of the token endpoints for tests: an httptest server that
//     answers GET /v2/access-token and GET /v2/organizations per bearer token
//     with the payloads Buildkite documents (embedded from payloads/), can be
//     told to fail them, and fails the test on any path it does not know.
//   - Org, a simulated organization: the REST endpoints kitefix's analyze
//     worker calls (builds, raw job logs, annotations, retries, Test Engine's
//     flaky tests) for one token, and web pages that show its builds with
//     their annotations rendered as Buildkite would (RenderMarkdown).
//   - Demo, the scenario `kitefix serve --demo` plays: an Org with builds
//     that failed in four different ways (a test failure, a compile error, a
//     lost agent, a flaky test), their raw logs (embedded from demo/), and
//     the signed webhooks Buildkite would send about them.
//
// It does not talk to Buildkite and holds no state beyond the process.
package bkfake

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// payloads are the bodies Buildkite documents for the token endpoints and
// its errors.
//
//go:embed payloads/*.json
var payloads embed.FS

// TB is the part of testing.TB the test fake uses; a *testing.T is one.
type TB interface {
	Errorf(format string, args ...any)
	Cleanup(func())
}

// Token is how the fake treats one bearer token.
type Token struct {
	// Scopes the token has.
	Scopes []string
	// ExpiresAt, when set, is sent as expires_at.
	ExpiresAt *time.Time
	// Orgs are slugs of payloads/organizations.json the token reaches; nil
	// means all of them, an empty slice none.
	Orgs []string
	// AccessTokenStatus and OrganizationsStatus make those calls fail with
	// the status (401, 403, 429, 5xx); 0 answers normally.
	AccessTokenStatus   int
	OrganizationsStatus int
	// Message replaces the error body's message.
	Message string
	// RateLimitReset is sent as RateLimit-Reset (seconds) on 429.
	RateLimitReset int
	// Hang makes every call wait for the request's context to end.
	Hang bool
}

// Server is the fake API.
type Server struct {
	*httptest.Server
	t      TB
	mu     sync.Mutex
	tokens map[string]Token
	calls  []string
}

// New starts a fake with no tokens; it is closed when the test ends.
func New(t TB) *Server {
	s := &Server{t: t, tokens: map[string]Token{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Add makes the fake know token. Unknown tokens get 401.
func (s *Server) Add(token string, tok Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = tok
}

// Calls returns the "METHOD /path" of every request so far.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.calls...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok, known := s.tokens[token]
	s.mu.Unlock()
	if tok.Hang {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("RateLimit-Limit", "200")
	w.Header().Set("RateLimit-Remaining", "199")
	w.Header().Set("RateLimit-Reset", "60")
	if !known {
		s.fail(w, http.StatusUnauthorized, tok)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2/access-token":
		if tok.AccessTokenStatus != 0 {
			s.fail(w, tok.AccessTokenStatus, tok)
			return
		}
		s.accessToken(w, tok)
	case r.Method == http.MethodGet && r.URL.Path == "/v2/organizations":
		if tok.OrganizationsStatus != 0 {
			s.fail(w, tok.OrganizationsStatus, tok)
			return
		}
		s.organizations(w, tok)
	default:
		s.t.Errorf("bkfake: unexpected request %s %s", r.Method, r.URL.Path)
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

func (s *Server) accessToken(w http.ResponseWriter, tok Token) {
	var body map[string]any
	s.load("access_token.json", &body)
	body["scopes"] = tok.Scopes
	if tok.ExpiresAt != nil {
		body["expires_at"] = tok.ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) organizations(w http.ResponseWriter, tok Token) {
	var all []map[string]any
	s.load("organizations.json", &all)
	orgs := []map[string]any{}
	for _, o := range all {
		if tok.Orgs == nil || contains(tok.Orgs, fmt.Sprint(o["slug"])) {
			orgs = append(orgs, o)
		}
	}
	_ = json.NewEncoder(w).Encode(orgs)
}

func (s *Server) fail(w http.ResponseWriter, status int, tok Token) {
	var body map[string]any
	switch status {
	case http.StatusUnauthorized:
		s.load("error_401.json", &body)
	case http.StatusForbidden:
		s.load("error_403.json", &body)
	case http.StatusTooManyRequests:
		s.load("error_429.json", &body)
		w.Header().Set("RateLimit-Remaining", "0")
		w.Header().Set("RateLimit-Reset", fmt.Sprint(tok.RateLimitReset))
	default:
		body = map[string]any{"message": http.StatusText(status)}
	}
	if tok.Message != "" {
		body["message"] = tok.Message
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) load(name string, v any) {
	if err := loadPayload(name, v); err != nil {
		s.t.Errorf("bkfake: %v", err)
	}
}

// loadPayload decodes the embedded payload name into v.
func loadPayload(name string, v any) error {
	b, err := payloads.ReadFile("payloads/" + name)
	if err != nil {
		return fmt.Errorf("read payload %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode payload %s: %w", name, err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
