package bkfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
)

// Limits and pacing of a simulated organization.
const (
	// maxRequestBody bounds what the fake reads of a request body: an
	// annotation is at most 1 MiB on Buildkite.
	maxRequestBody = 1 << 20
	// logLineStep is the time between two lines of a served raw log, for
	// the agent's timestamps.
	logLineStep = 37 * time.Millisecond
	// orgPerPage is the page size of listings (Buildkite's default).
	orgPerPage = 30
)

// OrgConfig describes a simulated organization.
type OrgConfig struct {
	// Slug and Name of the organization.
	Slug, Name string
	// Token is the one API access token the organization accepts (any
	// other gets 401). It has every scope kitefix asks for, and
	// write_builds.
	Token string
	// RetryPassesAfter is how long a job retried through the API runs
	// before it passes (0: it stays scheduled).
	RetryPassesAfter time.Duration
	// Log receives a line per request (default: discard). Tokens are never
	// logged.
	Log *slog.Logger
}

// Pipeline is a pipeline of a simulated organization.
type Pipeline struct {
	Slug, Name, Repository, DefaultBranch string
}

// Org is a simulated Buildkite organization on a loopback listener: the
// REST API for its token, and web pages that show its builds (/, and
// /<org>/<pipeline>/builds/<number> with each job at #<job id>) with their
// annotations rendered. Safe for concurrent use.
type Org struct {
	cfg OrgConfig
	url string
	srv *http.Server
	log *slog.Logger

	mu        sync.Mutex
	pipelines []Pipeline
	builds    []*orgBuild
	logs      map[string]string // job id → raw log text, without timestamps
	flaky     []buildkite.Test
	retries   []string
	timers    []*time.Timer
}

// orgBuild is a build and its annotations, one per context, in the order
// they were first written.
type orgBuild struct {
	buildkite.Build
	Annotations []buildkite.Annotation
}

// scopes are the scopes of the organization's token: every scope kitefix
// needs and the optional write_builds.
var scopes = []string{"read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs",
	"read_organizations", "read_pipelines", "read_user", "read_suites", "write_builds"}

// StartOrg serves a simulated organization on 127.0.0.1 at a free port
// until Close.
func StartOrg(cfg OrgConfig) (*Org, error) {
	if cfg.Slug == "" || cfg.Token == "" {
		return nil, errors.New("start simulated organization: need a slug and a token")
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Slug
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start simulated organization: listen: %w", err)
	}
	o := &Org{cfg: cfg, url: "http://" + ln.Addr().String(), logs: map[string]string{}, log: cfg.Log}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.srv = &http.Server{Handler: o.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("simulated Buildkite stopped", "err", err)
		}
	}()
	return o, nil
}

// URL is where the organization is served: its REST API (as
// BUILDKITE_API_URL) and its web pages.
func (o *Org) URL() string { return o.url }

// Token is the API access token the organization accepts.
func (o *Org) Token() string { return o.cfg.Token }

// Slug is the organization's slug.
func (o *Org) Slug() string { return o.cfg.Slug }

// Close stops serving.
func (o *Org) Close() error {
	o.mu.Lock()
	for _, t := range o.timers {
		t.Stop()
	}
	o.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return o.srv.Shutdown(ctx)
}

// AddPipeline adds (or replaces, by slug) a pipeline.
func (o *Org) AddPipeline(p Pipeline) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, old := range o.pipelines {
		if old.Slug == p.Slug {
			o.pipelines[i] = p
			return
		}
	}
	o.pipelines = append(o.pipelines, p)
}

// AddBuild adds (or replaces, by pipeline and number) a build of a known
// pipeline. Its addresses (url, web_url, each job's web_url and log_url)
// are filled in where empty, and jobs without a type are scripts.
func (o *Org) AddBuild(b buildkite.Build) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.pipeline(b.Pipeline.Slug)
	if !ok {
		return fmt.Errorf("add build: no pipeline %q", b.Pipeline.Slug)
	}
	if b.Number <= 0 {
		return fmt.Errorf("add build: number %d: want > 0", b.Number)
	}
	b.Pipeline = o.pipelineJSON(p)
	b.URL = or(b.URL, o.BuildAPIURL(p.Slug, b.Number))
	b.WebURL = or(b.WebURL, o.BuildWebURL(p.Slug, b.Number))
	b.Jobs = slices.Clone(b.Jobs)
	for i := range b.Jobs {
		o.fillJobURLs(&b.Jobs[i], b)
	}
	nb := &orgBuild{Build: b}
	for i, old := range o.builds {
		if old.Pipeline.Slug == b.Pipeline.Slug && old.Number == b.Number {
			o.builds[i] = nb
			return nil
		}
	}
	o.builds = append(o.builds, nb)
	return nil
}

// fillJobURLs fills in a job's type and addresses where empty.
func (o *Org) fillJobURLs(j *buildkite.Job, b buildkite.Build) {
	j.Type = or(j.Type, "script")
	j.Name = or(j.Name, j.Label)
	j.WebURL = or(j.WebURL, b.WebURL+"#"+j.ID)
	j.LogURL = or(j.LogURL, b.URL+"/jobs/"+j.ID+"/log")
}

// SetLog makes text the raw log of jobID. The fake adds the agent's
// timestamp to each line when it serves the log, as Buildkite does.
func (o *Org) SetLog(jobID, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.logs[jobID] = text
}

// SetFlaky makes Test Engine list tests as flaky, in one suite.
func (o *Org) SetFlaky(tests ...buildkite.Test) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flaky = slices.Clone(tests)
}

// Build returns the organization's current copy of a build.
func (o *Org) Build(pipeline string, number int) (buildkite.Build, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if b := o.find(pipeline, number); b != nil {
		c := b.Build
		c.Jobs = slices.Clone(b.Jobs)
		return c, true
	}
	return buildkite.Build{}, false
}

// Annotations returns a build's annotations.
func (o *Org) Annotations(pipeline string, number int) []buildkite.Annotation {
	o.mu.Lock()
	defer o.mu.Unlock()
	if b := o.find(pipeline, number); b != nil {
		return slices.Clone(b.Annotations)
	}
	return nil
}

// Retries returns the ids of the jobs retried through the API, in order.
func (o *Org) Retries() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.retries)
}

// BuildWebURL is the web page of a build.
func (o *Org) BuildWebURL(pipeline string, number int) string {
	return fmt.Sprintf("%s/%s/%s/builds/%d", o.url, o.cfg.Slug, pipeline, number)
}

// BuildAPIURL is the REST address of a build.
func (o *Org) BuildAPIURL(pipeline string, number int) string {
	return fmt.Sprintf("%s/builds/%d", o.PipelineAPIURL(pipeline), number)
}

// PipelineAPIURL is the REST address of a pipeline.
func (o *Org) PipelineAPIURL(pipeline string) string {
	return fmt.Sprintf("%s/v2/organizations/%s/pipelines/%s", o.url, o.cfg.Slug, pipeline)
}

func (o *Org) pipeline(slug string) (Pipeline, bool) {
	for _, p := range o.pipelines {
		if p.Slug == slug {
			return p, true
		}
	}
	return Pipeline{}, false
}

func (o *Org) pipelineJSON(p Pipeline) buildkite.Pipeline {
	return buildkite.Pipeline{
		ID: "pipeline-" + p.Slug, Slug: p.Slug, Name: p.Name,
		URL: o.PipelineAPIURL(p.Slug), WebURL: fmt.Sprintf("%s/%s/%s", o.url, o.cfg.Slug, p.Slug),
	}
}

func (o *Org) find(pipeline string, number int) *orgBuild {
	for _, b := range o.builds {
		if b.Pipeline.Slug == pipeline && b.Number == number {
			return b
		}
	}
	return nil
}

// routes is the REST API; every other GET is a web page.
func (o *Org) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, o.inOrg(h)) }
	const org = "/v2/organizations/{org}"
	const build = org + "/pipelines/{pipeline}/builds/{number}"
	handle("GET /v2/access-token", o.accessToken)
	handle("GET /v2/organizations", o.organizations)
	handle("GET "+org+"/builds", o.listBuilds)
	handle("GET "+org+"/pipelines/{pipeline}", o.getPipeline)
	handle("GET "+org+"/pipelines/{pipeline}/builds", o.listBuilds)
	handle("GET "+build, o.getBuild)
	handle("POST "+build+"/annotations", o.annotate)
	handle("GET "+build+"/jobs/{job}/log", o.jobLog)
	handle("PUT "+build+"/jobs/{job}/retry", o.retry)
	handle("GET /v2/analytics/organizations/{org}/suites", o.suites)
	handle("GET /v2/analytics/organizations/{org}/suites/{suite}/tests", o.flakyTests)
	handle("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "Not Found")
	})
	pages := o.pages()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v2/") {
			pages.ServeHTTP(w, r)
			return
		}
		o.log.Debug("simulated Buildkite request", "method", r.Method, "path", r.URL.Path)
		w.Header().Set("RateLimit-Limit", "200")
		w.Header().Set("RateLimit-Remaining", "199")
		w.Header().Set("RateLimit-Reset", "60")
		if r.Header.Get("Authorization") != "Bearer "+o.cfg.Token {
			var body map[string]any
			if err := loadPayload("error_401.json", &body); err != nil {
				body = map[string]any{"message": "Authentication required"}
			}
			writeJSON(w, http.StatusUnauthorized, body)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// inOrg answers 404 for a request about another organization.
func (o *Org) inOrg(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v := r.PathValue("org"); v != "" && v != o.cfg.Slug {
			apiError(w, http.StatusNotFound, "No organization found")
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"message": message})
}

func (o *Org) accessToken(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := loadPayload("access_token.json", &body); err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	body["scopes"] = scopes
	body["description"] = o.cfg.Name + " token"
	body["user"] = map[string]string{"name": "Demo Developer", "email": "demo@" + o.cfg.Slug + ".example"}
	writeJSON(w, http.StatusOK, body)
}

func (o *Org) organizations(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []map[string]any{{
		"id": "org-" + o.cfg.Slug, "slug": o.cfg.Slug, "name": o.cfg.Name,
		"url": o.url + "/v2/organizations/" + o.cfg.Slug, "web_url": o.url + "/",
		"created_at": "2019-02-01T10:11:12.000Z",
	}})
}

func (o *Org) getPipeline(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	p, ok := o.pipeline(r.PathValue("pipeline"))
	o.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "No pipeline found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "pipeline-" + p.Slug, "slug": p.Slug, "name": p.Name, "repository": p.Repository,
		"default_branch": p.DefaultBranch, "url": o.PipelineAPIURL(p.Slug),
		"web_url": fmt.Sprintf("%s/%s/%s", o.url, o.cfg.Slug, p.Slug),
	})
}

// listBuilds lists builds newest first, filtered by state, branch and
// finished_from as Buildkite does; one page of at most per_page.
func (o *Org) listBuilds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("finished_from"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			apiError(w, http.StatusUnprocessableEntity, "finished_from is not a valid time")
			return
		}
		since = t
	}
	limit := orgPerPage
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		limit = min(n, 100)
	}
	pipeline := r.PathValue("pipeline")
	o.mu.Lock()
	out := []buildkite.Build{}
	for i := len(o.builds) - 1; i >= 0 && len(out) < limit; i-- {
		b := o.builds[i]
		switch {
		case pipeline != "" && b.Pipeline.Slug != pipeline,
			q.Get("state") != "" && b.State != q.Get("state"),
			q.Get("branch") != "" && b.Branch != q.Get("branch"),
			!since.IsZero() && (b.FinishedAt == nil || b.FinishedAt.Before(since)):
			continue
		}
		c := b.Build
		c.Jobs = slices.Clone(b.Jobs)
		out = append(out, c)
	}
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// lookup finds the build a request names; it answers 404 itself.
func (o *Org) lookup(w http.ResponseWriter, r *http.Request) *orgBuild {
	n, err := strconv.Atoi(r.PathValue("number"))
	b := o.find(r.PathValue("pipeline"), n)
	if err != nil || b == nil {
		apiError(w, http.StatusNotFound, "No build found")
		return nil
	}
	return b
}

func (o *Org) getBuild(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	b := o.lookup(w, r)
	if b == nil {
		o.mu.Unlock()
		return
	}
	c := b.Build
	c.Jobs = slices.Clone(b.Jobs)
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, c)
}

// annotate creates the annotation of a context, or replaces it (appends to
// it with append: true), as Buildkite does.
func (o *Org) annotate(w http.ResponseWriter, r *http.Request) {
	var a buildkite.Annotation
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody+1)).Decode(&a); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if strings.TrimSpace(a.Body) == "" {
		apiError(w, http.StatusUnprocessableEntity, "Body can't be blank")
		return
	}
	if len(a.Body) > maxRequestBody {
		apiError(w, http.StatusUnprocessableEntity, "Body is too long (maximum is 1 MiB)")
		return
	}
	a.Context = or(a.Context, "default")
	a.Style = or(a.Style, "default")
	o.mu.Lock()
	b := o.lookup(w, r)
	if b == nil {
		o.mu.Unlock()
		return
	}
	replaced := false
	for i, old := range b.Annotations {
		if old.Context == a.Context {
			if a.Append {
				a.Body = old.Body + a.Body
			}
			a.Append = false
			b.Annotations[i], replaced = a, true
		}
	}
	if !replaced {
		a.Append = false
		b.Annotations = append(b.Annotations, a)
	}
	pipeline, number := b.Pipeline.Slug, b.Number
	o.mu.Unlock()
	o.log.Info("simulated Buildkite: build annotated", "pipeline", pipeline, "build", number, "context", a.Context)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": "annotation-" + a.Context, "context": a.Context, "style": a.Style,
		"body_html": RenderMarkdown(a.Body), "created_at": time.Now().UTC().Format(time.RFC3339),
	})
}

// jobLog serves a job's raw log with the agent's timestamps.
func (o *Org) jobLog(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	b := o.lookup(w, r)
	if b == nil {
		o.mu.Unlock()
		return
	}
	id := r.PathValue("job")
	text, ok := o.logs[id]
	var start time.Time
	for _, j := range b.Jobs {
		if j.ID == id && j.StartedAt != nil {
			start = *j.StartedAt
		}
	}
	o.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "No log found")
		return
	}
	if start.IsZero() {
		start = time.Now()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, RawLog(text, start))
}

// RawLog is text as Buildkite serves a raw log: each line after the
// agent's timestamp escape (ESC _bk;t=<unix ms> BEL), the lines start
// apart.
func RawLog(text string, start time.Time) string {
	var b strings.Builder
	t := start
	for line := range strings.Lines(text) {
		fmt.Fprintf(&b, "\x1b_bk;t=%d\x07%s", t.UnixMilli(), line)
		t = t.Add(logLineStep)
	}
	return b.String()
}

// retry retries a failed job once, as Buildkite does: the job is marked
// retried and a new job runs in its place.
func (o *Org) retry(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.lookup(w, r)
	if b == nil {
		return
	}
	id := r.PathValue("job")
	i := slices.IndexFunc(b.Jobs, func(j buildkite.Job) bool { return j.ID == id })
	if i < 0 {
		apiError(w, http.StatusNotFound, "No job found")
		return
	}
	j := b.Jobs[i]
	if j.Retried || (j.State != "failed" && j.State != "timed_out" && j.State != "broken") {
		apiError(w, http.StatusUnprocessableEntity, "Only failed or timed out jobs that have not already been retried can be retried")
		return
	}
	now := time.Now().UTC()
	nj := buildkite.Job{
		ID: newUUID(), Type: j.Type, Name: j.Name, Label: j.Label,
		StepKey: j.StepKey, State: "scheduled", Command: j.Command,
		RetriesCount: j.RetriesCount + 1, RetryType: "manual",
		RetrySource: &buildkite.RetrySource{JobID: j.ID, RetryType: "manual"},
		CreatedAt:   &now, ScheduledAt: &now,
	}
	o.fillJobURLs(&nj, b.Build)
	b.Jobs[i].Retried, b.Jobs[i].RetriedInJobID = true, nj.ID
	b.Jobs = append(b.Jobs, nj)
	b.State = "running"
	b.FinishedAt = nil
	o.retries = append(o.retries, j.ID)
	if d := o.cfg.RetryPassesAfter; d > 0 {
		pipeline, number := b.Pipeline.Slug, b.Number
		o.timers = append(o.timers, time.AfterFunc(d, func() { o.pass(pipeline, number, nj.ID, j.ID) }))
	}
	o.log.Info("simulated Buildkite: job retried", "pipeline", b.Pipeline.Slug, "build", b.Number, "job", j.ID)
	writeJSON(w, http.StatusOK, nj)
}

// pass finishes a retried job as passed, with a log that says so, and
// the build as passed when no other job failed.
func (o *Org) pass(pipeline string, number int, jobID, retryOf string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.find(pipeline, number)
	if b == nil {
		return
	}
	now := time.Now().UTC()
	zero := 0
	for i := range b.Jobs {
		if b.Jobs[i].ID == jobID {
			started := now.Add(-o.cfg.RetryPassesAfter)
			b.Jobs[i].State, b.Jobs[i].ExitStatus = "passed", &zero
			b.Jobs[i].StartedAt, b.Jobs[i].FinishedAt = &started, &now
		}
	}
	if prev, ok := o.logs[retryOf]; ok {
		o.logs[jobID] = passedLog(prev)
	}
	failed := false
	for _, j := range b.Jobs {
		if !j.Retried && j.State != "passed" {
			failed = true
		}
	}
	if !failed {
		b.State, b.FinishedAt = "passed", &now
	}
}

// passedLog is the log of a retry that passed: the failed log's set-up,
// then success.
func passedLog(failed string) string {
	var b strings.Builder
	for line := range strings.Lines(failed) {
		if strings.HasPrefix(line, "---") || strings.HasPrefix(line, "+++") {
			b.WriteString(line)
			break
		}
		b.WriteString(line)
	}
	b.WriteString("Running the same command again on a fresh agent.\nAll checks passed.\n")
	return b.String()
}

func (o *Org) suites(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	has := len(o.flaky) > 0
	o.mu.Unlock()
	suites := []buildkite.Suite{}
	if has {
		suites = append(suites, buildkite.Suite{ID: "suite-1", Slug: "default", Name: "Default", WebURL: o.url + "/"})
	}
	writeJSON(w, http.StatusOK, suites)
}

func (o *Org) flakyTests(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	tests := slices.Clone(o.flaky)
	o.mu.Unlock()
	if r.PathValue("suite") != "default" {
		apiError(w, http.StatusNotFound, "No suite found")
		return
	}
	if label := r.URL.Query().Get("label"); label != "" && label != "flaky" {
		tests = nil
	}
	if tests == nil {
		tests = []buildkite.Test{}
	}
	writeJSON(w, http.StatusOK, tests)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
