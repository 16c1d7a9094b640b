package bkfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/ctxtime"
	"github.com/kitefix/kitefix/shared/webhook"
)

// The demo organization and its token.
const (
	DemoOrg     = "acme"
	DemoOrgName = "Acme (simulated)"
	// DemoToken is the API access token the demo organization accepts. It
	// opens nothing but the simulated organization of this process.
	DemoToken = "bkua_demo0000000000000000000000000000000000"
)

// Pacing of the demo.
const (
	// DefaultDemoSpacing is the time between two failing builds: long
	// enough to see each arrive on the page, short enough that all four
	// are there within fifteen seconds.
	DefaultDemoSpacing = 3 * time.Second
	// DefaultDemoRetryPassesAfter is how long a retried job runs before it
	// passes.
	DefaultDemoRetryPassesAfter = 4 * time.Second
	// demoCallTimeout bounds each request the demo makes to kitefix.
	demoCallTimeout = 15 * time.Second
	// maxDemoResponse bounds what the demo reads of kitefix's answers.
	maxDemoResponse = 1 << 20
)

// Kind is a kind of failure the demo plays.
type Kind string

// The kinds of failure of the demo.
const (
	KindTestFailure  Kind = "test failure"
	KindCompileError Kind = "compile error"
	KindAgentLost    Kind = "agent lost"
	KindFlakyTest    Kind = "flaky test"
)

// Failure is one failing build of the demo: the build, its failed job and
// the raw log that explains it.
type Failure struct {
	Kind     Kind
	Pipeline string
	Number   int
	Message  string
	Branch   string
	Commit   string
	// Step is the failed job's name and StepKey its key; Passed are the
	// names of the build's jobs that passed.
	Step, StepKey string
	Passed        []string
	ExitStatus    int
	// LogFile is the failed job's raw log, under demo/ in the package.
	LogFile string
	// Event is the webhook that tells kitefix: job.finished for the job,
	// or build.finished for the build.
	Event string
	// Category is what kitefix's analyzer should find, and Retried whether
	// kitefix's rules retry the job.
	Category string
	Retried  bool
}

// demoPipelines are the demo organization's pipelines.
var demoPipelines = []Pipeline{
	{Slug: "payments-api", Name: "Payments API", Repository: "git@github.com:acme/payments-api.git", DefaultBranch: "main"},
	{Slug: "storefront", Name: "Storefront", Repository: "git@github.com:acme/storefront.git", DefaultBranch: "main"},
	{Slug: "search-indexer", Name: "Search Indexer", Repository: "git@github.com:acme/search-indexer.git", DefaultBranch: "main"},
}

// DemoFailures are the failing builds the demo plays, in the order their
// webhooks arrive.
var DemoFailures = []Failure{
	{
		Kind: KindTestFailure, Pipeline: "payments-api", Number: 1042,
		Message: "Split partial refunds across ledger entries", Branch: "main",
		Commit: "9c1e4b7a0d2f3e5a6b7c8d9e0f1a2b3c4d5e6f70",
		Step:   ":go: test", StepKey: "test", Passed: []string{":go: lint", ":docker: build image"},
		ExitStatus: 2, LogFile: "go-test-failure.log", Event: webhook.EventJobFinished,
		Category: "test",
	},
	{
		Kind: KindCompileError, Pipeline: "storefront", Number: 318,
		Message: "Show cart totals with discounts applied", Branch: "cart-totals",
		Commit: "4f2a9d81c3b7e6a5d4c3b2a1908f7e6d5c4b3a29",
		Step:   ":typescript: typecheck", StepKey: "typecheck", Passed: []string{":eslint: lint"},
		ExitStatus: 2, LogFile: "typescript-compile-error.log", Event: webhook.EventBuildFinished,
		Category: "compile",
	},
	{
		Kind: KindAgentLost, Pipeline: "payments-api", Number: 1043,
		Message: "Add idempotency keys to refund requests", Branch: "main",
		Commit: "2b7d4c19e8f0a6b5c4d3e2f1a0b9c8d7e6f5a4b3",
		Step:   ":docker: integration tests", StepKey: "integration", Passed: []string{":go: lint", ":go: test"},
		ExitStatus: -1, LogFile: "agent-lost.log", Event: webhook.EventJobFinished,
		Category: "infrastructure", Retried: true,
	},
	{
		Kind: KindFlakyTest, Pipeline: "search-indexer", Number: 877,
		Message: "Batch index updates per tenant", Branch: "main",
		Commit: "7e3f0a2c5b9d8e1f4a6c3b2d1e0f9a8b7c6d5e4f",
		Step:   ":pytest: tests", StepKey: "pytest", Passed: []string{":python: lint"},
		ExitStatus: 1, LogFile: "flaky-test.log", Event: webhook.EventJobFinished,
		Category: "test", Retried: true,
	},
}

// demoFlaky is what Test Engine knows to be flaky in the demo
// organization: the test the flaky build fails.
var demoFlaky = []buildkite.Test{{
	ID: "0b5c3a1e-7d2f-4e8a-9b6c-1d2e3f4a5b6c", Scope: "tests/test_sync.py", Name: "test_reindex_picks_up_late_writes",
	Location: "tests/test_sync.py:82", FileName: "tests/test_sync.py",
}}

// DemoLog returns the raw log (without timestamps) of a demo failure.
func DemoLog(f Failure) (string, error) {
	b, err := assets.ReadFile("demo/" + f.LogFile)
	if err != nil {
		return "", fmt.Errorf("read demo log: %w", err)
	}
	return string(b), nil
}

// DemoConfig sets up a Demo; the zero value is the demo of `kitefix serve
// --demo`.
type DemoConfig struct {
	// Spacing is the time between webhooks (0: DefaultDemoSpacing; < 0:
	// none).
	Spacing time.Duration
	// RetryPassesAfter is how long a retried job runs before it passes
	// (0: DefaultDemoRetryPassesAfter).
	RetryPassesAfter time.Duration
	// Client sends the demo's requests to kitefix (default: a client with
	// a timeout).
	Client *http.Client
	// Log receives what the demo does (default: discard).
	Log *slog.Logger
}

// Demo is a simulated organization and the failing builds it reports to
// kitefix: Connect connects kitefix to it with DemoToken, Play adds each
// failing build and sends the webhooks Buildkite would, signed with the
// connection's webhook secret.
type Demo struct {
	org    *Org
	cfg    DemoConfig
	client *http.Client
	log    *slog.Logger
}

// StartDemo serves the demo organization on a loopback listener; its
// builds arrive with Play.
func StartDemo(cfg DemoConfig) (*Demo, error) {
	if cfg.Spacing == 0 {
		cfg.Spacing = DefaultDemoSpacing
	}
	if cfg.RetryPassesAfter <= 0 {
		cfg.RetryPassesAfter = DefaultDemoRetryPassesAfter
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	org, err := StartOrg(OrgConfig{Slug: DemoOrg, Name: DemoOrgName, Token: DemoToken, RetryPassesAfter: cfg.RetryPassesAfter, Log: log})
	if err != nil {
		return nil, fmt.Errorf("start demo: %w", err)
	}
	for _, p := range demoPipelines {
		org.AddPipeline(p)
	}
	org.SetFlaky(demoFlaky...)
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: demoCallTimeout}
	}
	return &Demo{org: org, cfg: cfg, client: client, log: log}, nil
}

// Org is the demo's simulated organization.
func (d *Demo) Org() *Org { return d.org }

// URL is the simulated organization's address (BUILDKITE_API_URL, and its
// web pages).
func (d *Demo) URL() string { return d.org.URL() }

// Close stops the simulated organization.
func (d *Demo) Close() error { return d.org.Close() }

// Hook is where the demo sends webhooks and the secret it signs them with.
type Hook struct {
	URL    string
	secret string
}

// connectResponse is the part of kitefix's status record the demo reads.
type connectResponse struct {
	State   string `json:"state"`
	Webhook *struct {
		URL    string `json:"url"`
		Secret string `json:"secret"`
	} `json:"webhook"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Connect connects the kitefix settings API at base (the local stack's
// address) to the demo organization with DemoToken, as a person would on
// the settings page. When the connection's webhook secret is not shown
// (the connection existed already), it makes a new one. The webhooks go
// to base, to the webhook path kitefix names.
func (d *Demo) Connect(ctx context.Context, base string) (Hook, error) {
	base = strings.TrimRight(base, "/")
	rec, err := d.call(ctx, http.MethodPut, base+"/v1/integrations/buildkite", `{"token":"`+DemoToken+`"}`)
	if err != nil {
		return Hook{}, fmt.Errorf("connect the demo organization: %w", err)
	}
	if rec.State != "connected" || rec.Webhook == nil || rec.Webhook.URL == "" {
		return Hook{}, fmt.Errorf("connect the demo organization: kitefix says %s", describe(rec))
	}
	if rec.Webhook.Secret == "" {
		if rec, err = d.call(ctx, http.MethodPost, base+"/v1/integrations/buildkite/webhook-secret", ""); err != nil {
			return Hook{}, fmt.Errorf("make a webhook secret for the demo: %w", err)
		}
		if rec.Webhook == nil || rec.Webhook.Secret == "" {
			return Hook{}, fmt.Errorf("make a webhook secret for the demo: kitefix says %s", describe(rec))
		}
	}
	u, err := url.Parse(rec.Webhook.URL)
	if err != nil {
		return Hook{}, fmt.Errorf("read the webhook URL: %w", err)
	}
	return Hook{URL: base + "/hooks/" + path.Base(u.Path), secret: rec.Webhook.Secret}, nil
}

func describe(rec connectResponse) string {
	if rec.Error != nil {
		return rec.Error.Code + ": " + rec.Error.Message
	}
	return "state " + rec.State
}

func (d *Demo) call(ctx context.Context, method, u, body string) (connectResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, demoCallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return connectResponse{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return connectResponse{}, err
	}
	defer resp.Body.Close()
	var rec connectResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDemoResponse)).Decode(&rec); err != nil {
		return connectResponse{}, fmt.Errorf("%s %s answered %s, not a status record: %w", method, u, resp.Status, err)
	}
	if resp.StatusCode/100 != 2 {
		return rec, fmt.Errorf("%s %s answered %s: %s", method, u, resp.Status, describe(rec))
	}
	return rec, nil
}

// Play sends a ping, then, one every Spacing, adds each of DemoFailures to
// the organization as a build that just failed and sends its webhook to
// hook. It returns when all are sent, at the first delivery kitefix
// refuses, or when ctx ends.
func (d *Demo) Play(ctx context.Context, hook Hook) error {
	if err := d.send(ctx, hook, webhook.EventPing, d.ping(hook)); err != nil {
		return err
	}
	for i, f := range DemoFailures {
		if i > 0 || d.cfg.Spacing > 0 {
			if err := ctxtime.Sleep(ctx, d.cfg.Spacing); err != nil {
				return err
			}
		}
		b, err := d.addFailure(f, time.Now().UTC())
		if err != nil {
			return err
		}
		if err := d.send(ctx, hook, f.Event, d.payload(f, b)); err != nil {
			return err
		}
		d.log.Info("demo: build failed and Buildkite sent its webhook", "pipeline", f.Pipeline, "build", f.Number, "kind", string(f.Kind), "event", f.Event)
	}
	return nil
}

// addFailure adds f to the organization as a build that finished failed at
// now, its failed job last, each job with a new id.
func (d *Demo) addFailure(f Failure, now time.Time) (buildkite.Build, error) {
	text, err := DemoLog(f)
	if err != nil {
		return buildkite.Build{}, err
	}
	created, started := now.Add(-6*time.Minute), now.Add(-5*time.Minute)
	b := buildkite.Build{
		ID: newUUID(), Number: f.Number, State: "failed", Branch: f.Branch, Commit: f.Commit,
		Message: f.Message, Source: "webhook", Pipeline: buildkite.Pipeline{Slug: f.Pipeline},
		CreatedAt: &created, ScheduledAt: &created, StartedAt: &started, FinishedAt: &now,
	}
	zero, exit := 0, f.ExitStatus
	for _, name := range f.Passed {
		done := started.Add(90 * time.Second)
		b.Jobs = append(b.Jobs, buildkite.Job{ID: newUUID(), Type: "script", Name: name, State: "passed",
			ExitStatus: &zero, CreatedAt: &created, StartedAt: &started, FinishedAt: &done})
	}
	failed := buildkite.Job{ID: newUUID(), Type: "script", Name: f.Step, StepKey: f.StepKey, State: "failed",
		ExitStatus: &exit, CreatedAt: &created, StartedAt: &started, FinishedAt: &now}
	b.Jobs = append(b.Jobs, failed)
	d.org.SetLog(failed.ID, text)
	if err := d.org.AddBuild(b); err != nil {
		return buildkite.Build{}, err
	}
	b, _ = d.org.Build(f.Pipeline, f.Number)
	return b, nil
}

// payload is the webhook Buildkite sends for f's build b: job.finished for
// its failed job (the build still failing), or build.finished.
func (d *Demo) payload(f Failure, b buildkite.Build) webhook.Event {
	p, _ := d.org.pipeline(f.Pipeline)
	pipeline := &webhook.Pipeline{
		ID: "pipeline-" + p.Slug, URL: d.org.PipelineAPIURL(p.Slug), WebURL: d.org.URL() + "/" + DemoOrg + "/" + p.Slug,
		Name: p.Name, Slug: p.Slug, Repository: p.Repository, DefaultBranch: p.DefaultBranch,
		BuildsURL: d.org.PipelineAPIURL(p.Slug) + "/builds",
	}
	build := &webhook.Build{
		ID: b.ID, URL: b.URL, WebURL: b.WebURL, Number: b.Number, State: b.State, Message: b.Message,
		Commit: b.Commit, Branch: b.Branch, Source: b.Source, CreatedAt: b.CreatedAt, ScheduledAt: b.ScheduledAt,
		StartedAt: b.StartedAt, FinishedAt: b.FinishedAt, MetaData: map[string]string{},
	}
	ev := webhook.Event{Event: f.Event, Build: build, Pipeline: pipeline, Sender: demoSender}
	if f.Event == webhook.EventJobFinished {
		j := b.Jobs[len(b.Jobs)-1]
		build.State, build.FinishedAt = "failing", nil
		name, key := j.Name, j.StepKey
		ev.Job = &webhook.Job{
			ID: j.ID, Type: j.Type, Name: &name, StepKey: &key, State: j.State, BuildURL: b.WebURL,
			WebURL: j.WebURL, LogURL: j.LogURL, RawLogURL: j.LogURL + ".txt", ExitStatus: j.ExitStatus,
			AgentQueryRules: []string{"queue=default"}, CreatedAt: j.CreatedAt, ScheduledAt: j.CreatedAt,
			RunnableAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		}
	}
	return ev
}

var demoSender = &webhook.Sender{ID: "0198a1b2-0000-4000-8000-00000000d3e0", Name: "Demo Developer"}

func (d *Demo) ping(hook Hook) webhook.Event {
	return webhook.Event{
		Event:   webhook.EventPing,
		Service: &webhook.Service{ID: newUUID(), Provider: "webhook", Settings: webhook.ServiceSettings{URL: hook.URL}},
		Organization: &webhook.Organization{
			ID: "org-" + DemoOrg, URL: d.org.URL() + "/v2/organizations/" + DemoOrg, WebURL: d.org.URL() + "/",
			Name: DemoOrgName, Slug: DemoOrg,
		},
		Sender: demoSender,
	}
}

// send posts ev to hook as Buildkite does, signed with the hook's secret.
func (d *Demo) send(ctx context.Context, hook Hook, event string, ev webhook.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode %s webhook: %w", event, err)
	}
	ctx, cancel := context.WithTimeout(ctx, demoCallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("send %s webhook: %w", event, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Buildkite-Request")
	req.Header.Set("X-Buildkite-Event", event)
	req.Header.Set("X-Buildkite-Signature", webhook.Sign(hook.secret, time.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("send %s webhook: %w", event, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("send %s webhook: kitefix answered %s: %s", event, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Run connects kitefix at base to the demo organization and plays the
// failing builds, writing what happens to out. It returns when the last
// webhook is sent; an error says what failed.
func (d *Demo) Run(ctx context.Context, base string, out io.Writer) error {
	hook, err := d.Connect(ctx, base)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it connected
		}
		return err
	}
	fmt.Fprintf(out, "demo: connected to the simulated organization %q at %s\n", DemoOrg, d.URL())
	fmt.Fprintf(out, "demo: %d failing builds arrive as signed webhooks over the next %s\n",
		len(DemoFailures), time.Duration(len(DemoFailures))*max(d.cfg.Spacing, 0))
	if err := d.Play(ctx, hook); err != nil {
		if ctx.Err() != nil {
			return nil // stopped: what was sent stays analyzed
		}
		return err
	}
	fmt.Fprintf(out, "demo: all %d failing builds sent; their explanations appear on the page\n", len(DemoFailures))
	return nil
}

// newUUID is a random (version 4) UUID, as Buildkite's ids are.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
