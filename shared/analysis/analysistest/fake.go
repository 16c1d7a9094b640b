// Package analysistest is a fake Buildkite REST API for tests of the
// analyze path: an httptest server that knows builds with their jobs, serves
// raw job logs (streamed from a function, so a test can send a 1 GiB log
// without holding it), records annotations and retries, lists failed and
// passed builds, answers token verification, and can be told to fail the
// next requests of a path with a status (429 with RateLimit-Reset, 5xx,
// 401). Any other request fails the test.
package analysistest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
)

// Scopes is every scope a kitefix token can have.
var Scopes = []string{"read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs",
	"read_organizations", "read_pipelines", "read_user", "read_suites", "write_builds"}

// Fault makes requests fail.
type Fault struct {
	// Status is the HTTP status to answer.
	Status int
	// Header is sent with it (say RateLimit-Reset: 7).
	Header map[string]string
	// Times is how many requests fail (0: one).
	Times int
	// Hang, when set, answers nothing until the request is given up.
	Hang bool
}

// Annotation is one annotation the fake received.
type Annotation struct {
	Org, Pipeline string
	Build         int
	buildkite.Annotation
	At time.Time
}

// Server is the fake API.
type Server struct {
	*httptest.Server
	t testing.TB

	mu          sync.Mutex
	token       string
	org         string
	builds      []*buildkite.Build
	logs        map[string]func() io.Reader
	annotations []Annotation
	retries     []string
	faults      map[string][]Fault
	calls       []string
	nextID      int
	flaky       []buildkite.Test
	// AnnotationHook, when set, is called (without the lock) after each
	// annotation is recorded.
	annotationHook func(Annotation)
}

// New starts a fake for one token and organization; it closes when the
// test ends.
func New(t testing.TB, token, org string) *Server {
	s := &Server{t: t, token: token, org: org, logs: map[string]func() io.Reader{}, faults: map[string][]Fault{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// OnAnnotation calls f after each annotation is recorded.
func (s *Server) OnAnnotation(f func(Annotation)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.annotationHook = f
}

// AddBuild adds (or replaces, by number and pipeline) a build.
func (s *Server) AddBuild(b buildkite.Build) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, old := range s.builds {
		if old.Number == b.Number && old.Pipeline.Slug == b.Pipeline.Slug {
			s.builds[i] = &b
			return
		}
	}
	s.builds = append(s.builds, &b)
}

// SetLog makes the log of jobID the reader open returns (called per request).
func (s *Server) SetLog(jobID string, open func() io.Reader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs[jobID] = open
}

// SetLogText makes the log of jobID text.
func (s *Server) SetLogText(jobID, text string) {
	s.SetLog(jobID, func() io.Reader { return strings.NewReader(text) })
}

// Fail makes the next requests whose "METHOD /path" has the given suffix
// fail as f says.
func (s *Server) Fail(suffix string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults[suffix] = append(s.faults[suffix], f)
}

// SetFlaky makes Test Engine list tests (by name) as flaky in one suite.
func (s *Server) SetFlaky(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flaky = nil
	for i, n := range names {
		s.flaky = append(s.flaky, buildkite.Test{ID: fmt.Sprintf("test-%d", i), Name: n})
	}
}

// Annotations returns the annotations received, in order.
func (s *Server) Annotations() []Annotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.annotations)
}

// Retries returns the ids of the jobs retried, in order.
func (s *Server) Retries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.retries)
}

// Calls returns "METHOD /path" of every request.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Build returns the fake's current copy of a build.
func (s *Server) Build(pipeline string, number int) (buildkite.Build, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.find(pipeline, number); b != nil {
		return *b, true
	}
	return buildkite.Build{}, false
}

func (s *Server) find(pipeline string, number int) *buildkite.Build {
	for _, b := range s.builds {
		if b.Pipeline.Slug == pipeline && b.Number == number {
			return b
		}
	}
	return nil
}

func (s *Server) fault(call string) (Fault, bool) {
	for suffix, fs := range s.faults {
		if len(fs) == 0 || !strings.HasSuffix(call, suffix) {
			continue
		}
		f := fs[0]
		if fs[0].Times--; fs[0].Times <= 0 {
			s.faults[suffix] = fs[1:]
		}
		return f, true
	}
	return Fault{}, false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call := r.Method + " " + r.URL.Path
	s.mu.Lock()
	s.calls = append(s.calls, call)
	f, failing := s.fault(call)
	known := r.Header.Get("Authorization") == "Bearer "+s.token
	s.mu.Unlock()
	w.Header().Set("RateLimit-Limit", "200")
	w.Header().Set("RateLimit-Remaining", "150")
	w.Header().Set("RateLimit-Reset", "30")
	if failing && f.Hang {
		<-r.Context().Done()
		return
	}
	if failing {
		for k, v := range f.Header {
			w.Header().Set(k, v)
		}
		writeJSON(w, f.Status, map[string]string{"message": http.StatusText(f.Status)})
		return
	}
	if !known {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Authentication required. Please supply a valid API Access Token"})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case call == "GET /v2/access-token":
		writeJSON(w, http.StatusOK, map[string]any{
			"uuid": "b63254c0-3271-4a98-8270-7cfbd6c2f14e", "description": "kitefix test token",
			"scopes": Scopes, "created_at": "2025-07-23 06:07:42 UTC",
			"user": map[string]string{"name": "Test User", "email": "test@example.com"},
		})
	case call == "GET /v2/organizations":
		writeJSON(w, http.StatusOK, []map[string]string{{"id": "org-1", "slug": s.org, "name": s.org}})
	case r.Method == http.MethodGet && len(parts) == 4 && parts[0] == "v2" && parts[3] == "builds":
		s.listBuilds(w, r, "")
	case r.Method == http.MethodGet && len(parts) == 5 && parts[3] == "pipelines":
		writeJSON(w, http.StatusOK, map[string]string{"slug": parts[4], "default_branch": "main"})
	case r.Method == http.MethodGet && len(parts) == 6 && parts[5] == "builds":
		s.listBuilds(w, r, parts[4])
	case r.Method == http.MethodGet && len(parts) == 5 && parts[1] == "analytics" && parts[4] == "suites":
		s.mu.Lock()
		suites := []map[string]string{}
		if len(s.flaky) > 0 {
			suites = append(suites, map[string]string{"id": "suite-1", "slug": "suite", "name": "Suite"})
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, suites)
	case r.Method == http.MethodGet && len(parts) == 7 && parts[1] == "analytics" && parts[6] == "tests":
		s.mu.Lock()
		tests := slices.Clone(s.flaky)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, tests)
	case len(parts) >= 7 && parts[3] == "pipelines" && parts[5] == "builds":
		s.build(w, r, parts)
	default:
		s.t.Errorf("analysistest: unexpected request %s", call)
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request, pipeline string) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("finished_from"); v != "" {
		since, _ = time.Parse(time.RFC3339, v)
	}
	s.mu.Lock()
	var out []buildkite.Build
	for i := len(s.builds) - 1; i >= 0; i-- {
		b := s.builds[i]
		switch {
		case pipeline != "" && b.Pipeline.Slug != pipeline,
			q.Get("state") != "" && b.State != q.Get("state"),
			q.Get("branch") != "" && b.Branch != q.Get("branch"),
			!since.IsZero() && (b.FinishedAt == nil || b.FinishedAt.Before(since)):
			continue
		}
		out = append(out, *b)
	}
	s.mu.Unlock()
	if out == nil {
		out = []buildkite.Build{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) build(w http.ResponseWriter, r *http.Request, parts []string) {
	number, _ := strconv.Atoi(parts[6])
	s.mu.Lock()
	b := s.find(parts[4], number)
	if b == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "No build found"})
		return
	}
	switch {
	case r.Method == http.MethodGet && len(parts) == 7:
		// A copy with its own jobs: a retry may change b.Jobs while
		// the response is written.
		out := *b
		out.Jobs = slices.Clone(b.Jobs)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	case r.Method == http.MethodPost && len(parts) == 8 && parts[7] == "annotations":
		var a buildkite.Annotation
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			s.mu.Unlock()
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		rec := Annotation{Org: parts[2], Pipeline: parts[4], Build: number, Annotation: a, At: time.Now()}
		s.annotations = append(s.annotations, rec)
		hook := s.annotationHook
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]string{"id": "annotation", "context": a.Context, "style": a.Style})
		if hook != nil {
			hook(rec)
		}
	case len(parts) == 10 && parts[7] == "jobs" && parts[9] == "log" && r.Method == http.MethodGet:
		open := s.logs[parts[8]]
		s.mu.Unlock()
		if open == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "No log found"})
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		if _, err := io.Copy(flushWriter{w}, open()); err != nil {
			// The log breaks off: cut the connection, as a dropped
			// stream would.
			panic(http.ErrAbortHandler)
		}
	case len(parts) == 10 && parts[7] == "jobs" && parts[9] == "retry" && r.Method == http.MethodPut:
		defer s.mu.Unlock()
		s.retry(w, b, parts[8])
	default:
		s.mu.Unlock()
		s.t.Errorf("analysistest: unexpected request %s %s", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

// retry makes a new job from jobID, as Buildkite does: once per job.
func (s *Server) retry(w http.ResponseWriter, b *buildkite.Build, jobID string) {
	for i, j := range b.Jobs {
		if j.ID != jobID {
			continue
		}
		if j.Retried {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Only failed or timed out jobs that have not already been retried can be retried"})
			return
		}
		s.nextID++
		nj := buildkite.Job{
			ID: fmt.Sprintf("%s-retry-%d", j.ID, s.nextID), Type: j.Type, Name: j.Name, Label: j.Label,
			StepKey: j.StepKey, State: "scheduled", WebURL: j.WebURL + "-retry",
			RetriesCount: 1, RetryType: "manual", RetrySource: &buildkite.RetrySource{JobID: j.ID, RetryType: "manual"},
		}
		b.Jobs[i].Retried, b.Jobs[i].RetriedInJobID = true, nj.ID
		b.Jobs = append(b.Jobs, nj)
		s.retries = append(s.retries, j.ID)
		writeJSON(w, http.StatusOK, nj)
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "No job found"})
}

// FailedBuild is a failed build of pipeline with failed jobs of the given
// ids (step keys "step-1", "step-2", ...), finished at finished.
func FailedBuild(org, pipeline string, number int, finished time.Time, jobIDs ...string) buildkite.Build {
	web := fmt.Sprintf("https://buildkite.com/%s/%s/builds/%d", org, pipeline, number)
	b := buildkite.Build{
		ID: fmt.Sprintf("build-%s-%d", pipeline, number), Number: number, State: "failed",
		Branch: "main", Commit: "abcd0b72a1e580e90712cdd9eb26d3fb41cd09c8", WebURL: web,
		Pipeline:   buildkite.Pipeline{Slug: pipeline, Name: pipeline, DefaultBranch: "main"},
		FinishedAt: &finished,
	}
	one := 1
	for i, id := range jobIDs {
		b.Jobs = append(b.Jobs, buildkite.Job{
			ID: id, Type: "script", Name: fmt.Sprintf(":hammer: step %d", i+1), StepKey: fmt.Sprintf("step-%d", i+1),
			State: "failed", ExitStatus: &one, WebURL: web + "#" + id, FinishedAt: &finished,
		})
	}
	return b
}

// flushWriter sends each write at once, so a log that breaks off has
// already sent its beginning.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// JobFinished is the body of the job.finished webhook Buildkite sends for
// the job jobID of b (in org), as the fake's build has it.
func JobFinished(org string, b buildkite.Build, jobID string) []byte {
	var job buildkite.Job
	for _, j := range b.Jobs {
		if j.ID == jobID {
			job = j
		}
	}
	api := fmt.Sprintf("https://api.buildkite.com/v2/organizations/%s/pipelines/%s", org, b.Pipeline.Slug)
	payload := map[string]any{
		"event": "job.finished",
		"job": map[string]any{
			"id": job.ID, "type": job.Type, "name": job.Name, "step_key": job.StepKey, "state": job.State,
			"web_url": job.WebURL, "soft_failed": job.SoftFailed, "exit_status": job.ExitStatus,
		},
		"build": map[string]any{
			"id": b.ID, "number": b.Number, "state": "failing", "branch": b.Branch, "commit": b.Commit,
			"url": fmt.Sprintf("%s/builds/%d", api, b.Number), "web_url": b.WebURL,
		},
		"pipeline": map[string]any{"slug": b.Pipeline.Slug, "name": b.Pipeline.Name, "url": api},
		"sender":   map[string]any{"id": "sender-1", "name": "Test User"},
	}
	body, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return body
}
