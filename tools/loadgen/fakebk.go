package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/kitefix/kitefix/shared/buildkite"
)

// scopes are every scope a kitefix token can ask for.
var scopes = []string{"read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs",
	"read_organizations", "read_pipelines", "read_user", "read_suites", "write_builds"}

// fakeBuildkite is a loopback Buildkite REST API for one token and
// organization: it answers the calls kitefix makes to connect and to
// analyze, serves each failed job's log, and counts requests, log reads
// and annotations. An unknown path is answered 404 and counted.
type fakeBuildkite struct {
	*httptest.Server
	token, org string

	mu          sync.Mutex
	builds      map[string]*buildkite.Build // "pipeline/number"
	logs        map[string]string           // job id → log
	requests    int
	unexpected  []string
	logReads    map[string]int
	annotations map[string]int // "pipeline/number" → annotations posted
}

func newFakeBuildkite(token, org string) *fakeBuildkite {
	f := &fakeBuildkite{token: token, org: org, builds: map[string]*buildkite.Build{}, logs: map[string]string{},
		logReads: map[string]int{}, annotations: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeBuildkite) addBuild(b *buildkite.Build) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds[b.Pipeline.Slug+"/"+strconv.Itoa(b.Number)] = b
}

func (f *fakeBuildkite) setLog(jobID, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[jobID] = text
}

// counts returns the requests, the unexpected requests, the log reads per
// job and the annotations per build so far.
func (f *fakeBuildkite) counts() (requests int, unexpected []string, logReads, annotations map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	logReads, annotations = map[string]int{}, map[string]int{}
	for k, v := range f.logReads {
		logReads[k] = v
	}
	for k, v := range f.annotations {
		annotations[k] = v
	}
	return f.requests, append([]string(nil), f.unexpected...), logReads, annotations
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeBuildkite) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	f.mu.Unlock()
	w.Header().Set("RateLimit-Limit", "200")
	w.Header().Set("RateLimit-Remaining", "150")
	w.Header().Set("RateLimit-Reset", "30")
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Authentication required. Please supply a valid API Access Token"})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	call := r.Method + " " + r.URL.Path
	switch {
	case call == "GET /v2/access-token":
		writeJSON(w, http.StatusOK, map[string]any{
			"uuid": "6f0c1f2e-0d1b-4b2a-9a55-1f3e5d7c9b10", "description": "kitefix load", "scopes": scopes,
			"created_at": "2025-07-23 06:07:42 UTC", "user": map[string]string{"name": "Load", "email": "load@example.com"},
		})
	case call == "GET /v2/organizations":
		writeJSON(w, http.StatusOK, []map[string]string{{"id": "org-1", "slug": f.org, "name": f.org}})
	case r.Method == http.MethodGet && len(parts) == 5 && parts[1] == "analytics" && parts[4] == "suites":
		writeJSON(w, http.StatusOK, []any{})
	case r.Method == http.MethodGet && len(parts) == 5 && parts[3] == "pipelines":
		writeJSON(w, http.StatusOK, map[string]string{"slug": parts[4], "default_branch": "main"})
	case r.Method == http.MethodGet && (len(parts) == 4 && parts[3] == "builds" || len(parts) == 6 && parts[5] == "builds"):
		// Passed builds for a baseline, failed builds for reconcile: none.
		writeJSON(w, http.StatusOK, []any{})
	case len(parts) >= 7 && parts[3] == "pipelines" && parts[5] == "builds":
		f.build(w, r, parts)
	default:
		f.unexpect(call)
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

func (f *fakeBuildkite) unexpect(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unexpected = append(f.unexpected, call)
}

func (f *fakeBuildkite) build(w http.ResponseWriter, r *http.Request, parts []string) {
	key := parts[4] + "/" + parts[6]
	f.mu.Lock()
	b := f.builds[key]
	f.mu.Unlock()
	if b == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "No build found"})
		return
	}
	switch {
	case r.Method == http.MethodGet && len(parts) == 7:
		writeJSON(w, http.StatusOK, b)
	case r.Method == http.MethodPost && len(parts) == 8 && parts[7] == "annotations":
		f.mu.Lock()
		f.annotations[key]++
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]string{"id": "annotation", "context": "kitefix", "style": "error"})
	case r.Method == http.MethodGet && len(parts) == 10 && parts[7] == "jobs" && parts[9] == "log":
		f.mu.Lock()
		text, ok := f.logs[parts[8]]
		f.logReads[parts[8]]++
		f.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "No log found"})
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, text)
	default:
		f.unexpect(r.Method + " " + r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}
