package analysis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/loganalysis"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/storage"
)

// Defaults of a Worker.
const (
	// DefaultLogTimeout bounds reading and analyzing one log. A 1 GiB log
	// streams through the analyzer in well under a minute; the analyze
	// function's 300-second timeout leaves room for the rest of a batch.
	DefaultLogTimeout = 2 * time.Minute
	// Dedupe records claimed here are written for a lease first and
	// confirmed for deliveryTTL once the work is queued (reconcile) or done
	// (a build's job), as the webhook function does: a process that dies
	// in between leaves a claim that lapses, so the work is not hidden for
	// a week. queueLease covers claim, send and confirm; jobLease covers
	// analyzing and reporting one job (LogTimeout and the report lease)
	// and stays far below the queue's visibility timeout, after which the
	// build message comes back.
	deliveryTTL = 7 * 24 * time.Hour
	queueLease  = 2 * time.Minute
	jobLease    = 10 * time.Minute
	// Backoff of a message that failed for a transient reason: doubling
	// from backoffBase with each receive, capped at backoffMax (SQS allows
	// up to 12 hours).
	backoffBase = 15 * time.Second
	backoffMax  = 15 * time.Minute
	// reportLease is how long a stored analysis belongs to the delivery
	// that stored it while it annotates and retries; a delivery that finds
	// it unreported after that finishes the report.
	reportLease = time.Minute
	// rateLimitedDelay is the wait when Buildkite rate limited us without
	// saying for how long: its window is a minute.
	rateLimitedDelay = time.Minute
)

// Config wires a Worker. Connections, Store and Buildkite are required.
type Config struct {
	Connections Connections
	Store       Store
	// Budget is the shared per-token request budget; nil leaves pacing to
	// the Buildkite client's per-process limiter.
	Budget Budget
	// Deliveries dedupes build expansion and reconcile against webhooks.
	Deliveries Deliveries
	// Queue is where the reconcile pass enqueues jobs.
	Queue     Enqueuer
	Buildkite NewBuildkite
	// AutoRetry allows retries (AUTO_RETRY).
	AutoRetry bool
	// NoBaseline turns off comparing the failed log with a passing log of
	// the same step.
	NoBaseline bool
	LogTimeout time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

// Worker processes queue messages: one failed job (or one failed build's
// jobs) at a time, each to a stored analysis. Safe for concurrent use.
type Worker struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	baselines baselineCache
	passed    passedLists
	// flakyCache holds each organization's Test Engine flaky tests for a
	// while: tenant + NUL + org → flakyEntry.
	flakyCache sync.Map
	// defaultBranches holds pipelines' default branches: tenant, org and
	// pipeline → defaultBranch.
	defaultBranches sync.Map
}

// New returns a Worker over cfg.
func New(cfg Config) *Worker {
	if cfg.LogTimeout <= 0 {
		cfg.LogTimeout = DefaultLogTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Worker{cfg: cfg, log: cfg.Logger, now: cfg.Now}
}

// Verdict says what becomes of a message.
type Verdict int

// The verdicts.
const (
	// Done: the work is finished (or can never be done and is recorded as
	// failed); delete the message.
	Done Verdict = iota
	// Later: a transient failure; return the message to the queue, visible
	// again after Outcome.Delay.
	Later
	// Poison: the message can never be processed; leave it to the queue's
	// redrive to the dead-letter queue.
	Poison
)

// Outcome is the result of processing one message.
type Outcome struct {
	Verdict Verdict
	// Delay is when a Later message should be seen again.
	Delay time.Duration
	// Err is why the message was not Done.
	Err error
	// Jobs is how many jobs got a stored analysis; Requests how many
	// Buildkite requests the message cost.
	Jobs     int
	Requests int
}

// String names the verdict, for logs and test failures.
func (o Outcome) String() string {
	switch o.Verdict {
	case Done:
		return "done"
	case Later:
		return "later"
	default:
		return "poison"
	}
}

// Process does the work of one decoded message. receives is how often the
// queue has delivered it (1 the first time); it sets the backoff.
func (w *Worker) Process(ctx context.Context, m queue.Message, receives int) Outcome {
	log := w.log.With("tenant", m.TenantID, "org", m.Org, "pipeline", m.Pipeline, "build", m.BuildNumber, "job", m.JobID)
	conn, err := w.cfg.Connections.GetConnection(ctx, m.TenantID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return Outcome{Verdict: Poison, Err: fmt.Errorf("unknown tenant %q", m.TenantID)}
	case err != nil:
		return w.later(fmt.Errorf("load connection: %w", err), receives)
	}
	if m.Kind == queue.KindJob {
		// A repeated delivery of finished work costs no Buildkite request.
		prev, err := w.cfg.Store.GetAnalysis(ctx, m.TenantID, m.DedupeKey())
		switch {
		case err == nil && prev.Reported:
			log.InfoContext(ctx, "job already analyzed; nothing to do", "state", string(prev.State))
			return Outcome{Verdict: Done}
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return w.later(fmt.Errorf("load analysis: %w", err), receives)
		}
	}
	if conn.State != connection.StateConnected {
		err := fmt.Errorf("the Buildkite connection is %s: connect a token again on the settings page", conn.State)
		return w.fail(ctx, log, m, err)
	}
	token, err := w.cfg.Connections.Token(ctx, m.TenantID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return w.fail(ctx, log, m, errors.New("no API token is stored for the connection: connect again on the settings page"))
	case err != nil:
		return w.later(fmt.Errorf("load token: %w", err), receives)
	}
	lim := newBudgetLimiter(w.cfg.Budget, token, w.now)
	run := &run{w: w, log: log, conn: conn, bk: w.cfg.Buildkite(token, lim), lim: lim, receives: receives, token: token}

	build, err := run.bk.Build(ctx, m.Org, m.Pipeline, m.BuildNumber)
	if err != nil {
		return run.buildkiteFailure(ctx, m, err)
	}
	run.pipelineDefault = build.Pipeline.DefaultBranch
	if m.Kind == queue.KindBuild {
		return run.expand(ctx, m, build)
	}
	out := run.job(ctx, m, build, m.JobID)
	out.Requests = lim.requests()
	return out
}

// run is the processing of one message with one tenant's client.
type run struct {
	w        *Worker
	log      *slog.Logger
	conn     connection.Record
	bk       Buildkite
	lim      *budgetLimiter
	receives int
	// token is the tenant's API token, kept out of what a log shows.
	token string
	// pipelineDefault is the pipeline's default branch as the build's
	// payload gives it ("" when it does not).
	pipelineDefault string
	// jobStart is the request count when the current job began; the
	// first job of a message also counts the build read.
	jobStart int
	jobs     int
}

// expand analyzes each failed job of a build. Each job is claimed first, as
// the webhook claims a job it queues, so a job queued on its own and also
// found here is analyzed once.
func (r *run) expand(ctx context.Context, m queue.Message, build buildkite.Build) Outcome {
	total := Outcome{Verdict: Done}
	for _, j := range build.Jobs {
		if !jobFailed(j) {
			continue
		}
		key := "job:" + j.ID
		if d := r.w.cfg.Deliveries; d != nil {
			err := d.ClaimDelivery(ctx, m.TenantID, key, r.w.now().Add(max(jobLease, r.w.cfg.LogTimeout+reportLease)))
			if errors.Is(err, storage.ErrConflict) {
				r.log.InfoContext(ctx, "job of the build already queued on its own", "job", j.ID)
				continue
			}
			if err != nil {
				return r.w.later(fmt.Errorf("claim %s: %w", key, err), r.receives)
			}
		}
		jm := m
		jm.Kind, jm.JobID = queue.KindJob, j.ID
		out := r.job(ctx, jm, build, j.ID)
		total.Jobs += out.Jobs
		if out.Verdict != Done {
			// Let the next delivery of the build message do this job.
			if d := r.w.cfg.Deliveries; d != nil {
				if err := d.ReleaseDelivery(context.WithoutCancel(ctx), m.TenantID, key); err != nil {
					r.log.ErrorContext(ctx, "release the claim of a job that goes back to the queue", "job", j.ID, "err", err)
				}
			}
			out.Jobs, out.Requests = total.Jobs, r.lim.requests()
			return out
		}
		if d := r.w.cfg.Deliveries; d != nil {
			if err := d.ConfirmDelivery(ctx, m.TenantID, key, r.w.now().Add(deliveryTTL)); err != nil {
				// The lease lapses: a later delivery finds the analysis stored.
				r.log.WarnContext(ctx, "confirm the claim of an analyzed job", "job", j.ID, "err", err)
			}
		}
	}
	total.Requests = r.lim.requests()
	return total
}

// job analyzes one job of build.
func (r *run) job(ctx context.Context, m queue.Message, build buildkite.Build, jobID string) Outcome {
	log := r.log.With("job", jobID)
	if r.jobs > 0 {
		r.jobStart = r.lim.requests()
	}
	r.jobs++
	store := r.w.cfg.Store
	key := "job:" + jobID
	existing, err := store.GetAnalysis(ctx, m.TenantID, key)
	switch {
	case err == nil && existing.Reported:
		log.InfoContext(ctx, "job already analyzed; nothing to do", "state", string(existing.State))
		return Outcome{Verdict: Done}
	case err == nil && r.w.now().Sub(existing.AnalyzedAt) < reportLease:
		// Another delivery may be reporting it right now: look again
		// when it has had time to finish.
		return Outcome{Verdict: Later, Delay: reportLease, Err: errors.New("the analysis is being reported by another delivery")}
	case err == nil:
		// A stored analysis whose report did not finish: finish it.
		return r.report(ctx, log, existing, build)
	case !errors.Is(err, storage.ErrNotFound):
		return r.w.later(fmt.Errorf("load analysis: %w", err), r.receives)
	}

	job, found := findJob(build, jobID)
	rec := r.w.newRecord(m, build, job)
	r.notePasses(ctx, log, m.TenantID, build)
	switch {
	case !found:
		rec.State, rec.Reason = StateSkipped, "the build no longer has this job"
		return r.store(ctx, log, rec, build)
	case !jobFailed(job):
		rec.State, rec.Reason = StateSkipped, fmt.Sprintf("the job is %s, not failed", job.State)
		return r.store(ctx, log, rec, build)
	}

	started := r.w.now()
	res, err := r.analyzeLog(ctx, m, job, &rec)
	rec.DurationMS = r.w.now().Sub(started).Milliseconds()
	switch {
	case err == nil:
		rec.Result = redactResult(capResult(res), r.token)
		rec.State = StateAnalyzed
	case ctx.Err() != nil:
		return r.w.later(fmt.Errorf("analyze log: %w", err), r.receives)
	case isLogGone(err):
		rec.State, rec.Error = StateFailed, "Buildkite no longer has this job's log (404): it expired or was deleted"
	case errors.Is(err, errLogCutOff):
		rec.State, rec.Error = StateFailed, err.Error()
	default:
		return r.buildkiteFailure(ctx, m, err)
	}
	return r.store(ctx, log, rec, build)
}

// errLogCutOff marks a log stream that ended before its end.
var errLogCutOff = errors.New("the log was cut off")

// errLogTimeout is the cause of a log that took longer than LogTimeout.
var errLogTimeout = errors.New("log timeout")

// maxCutOffTries is how many deliveries may find a log stream broken by
// the network before the job is recorded as failed.
const maxCutOffTries = 3

// analyzeLog streams the job's raw log into the analyzer, with a deadline.
func (r *run) analyzeLog(ctx context.Context, m queue.Message, job buildkite.Job, rec *Record) (loganalysis.Result, error) {
	base, ref := r.baseline(ctx, *rec, job)
	ctx, cancel := context.WithTimeoutCause(ctx, r.w.cfg.LogTimeout, errLogTimeout)
	defer cancel()
	rc, err := r.bk.JobLog(ctx, m.Org, m.Pipeline, m.BuildNumber, job.ID)
	if err != nil {
		return loganalysis.Result{}, err
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	res, err := loganalysis.Analyze(ctx, cr, loganalysis.Options{MaxExcerpts: MaxExcerpts, Baseline: base})
	switch {
	case err == nil:
		rec.Baseline = ref
		return res, nil
	case errors.Is(context.Cause(ctx), errLogTimeout):
		return loganalysis.Result{}, fmt.Errorf("%w: no end of the log after %d bytes in %s", errLogCutOff, cr.n, r.w.cfg.LogTimeout)
	case ctx.Err() != nil:
		return loganalysis.Result{}, err
	case buildkite.IsRetryable(err) && r.receives < maxCutOffTries:
		return loganalysis.Result{}, err
	}
	return loganalysis.Result{}, fmt.Errorf("%w after %d bytes: %v", errLogCutOff, cr.n, err)
}

// store creates the analysis and reports it back. A concurrent delivery of
// the same job that stored first wins; this one stops.
func (r *run) store(ctx context.Context, log *slog.Logger, rec Record, build buildkite.Build) Outcome {
	rec.Requests = r.lim.requests() - r.jobStart
	// Stored now: the report lease of a concurrent delivery counts from here.
	rec.AnalyzedAt = r.w.now().UTC()
	err := r.w.cfg.Store.CreateAnalysis(ctx, rec)
	switch {
	case errors.Is(err, storage.ErrConflict):
		log.InfoContext(ctx, "job analyzed by another delivery; nothing to do")
		return Outcome{Verdict: Done}
	case err != nil:
		return r.w.later(fmt.Errorf("store analysis: %w", err), r.receives)
	}
	out := r.report(ctx, log, rec, build)
	if out.Verdict == Done {
		out.Jobs = 1
	}
	return out
}

// report annotates the build and decides the retry, then marks rec
// reported. A transient failure leaves rec unreported for the next
// delivery to finish.
func (r *run) report(ctx context.Context, log *slog.Logger, rec Record, build buildkite.Build) Outcome {
	if rec.State == StateAnalyzed {
		job, _ := findJob(build, rec.JobID)
		if err := r.retry(ctx, log, &rec, job, build); err != nil {
			return r.reportFailure(ctx, rec, err)
		}
		if err := r.annotate(ctx, log, &rec); err != nil {
			return r.reportFailure(ctx, rec, err)
		}
	}
	rec.Reported = true
	rec.Requests = max(rec.Requests, r.lim.requests()-r.jobStart)
	if err := r.w.cfg.Store.UpdateAnalysis(ctx, rec); err != nil {
		return r.w.later(fmt.Errorf("store analysis: %w", err), r.receives)
	}
	log.InfoContext(ctx, "job analyzed", "state", string(rec.State), "category", string(rec.Category),
		"requests", rec.Requests, "retried", rec.Actions.Retried != nil, "duration_ms", rec.DurationMS)
	return Outcome{Verdict: Done}
}

// reportFailure keeps what the report did so far and sends the message
// back, unless the token was revoked.
func (r *run) reportFailure(ctx context.Context, rec Record, err error) Outcome {
	if uerr := r.w.cfg.Store.UpdateAnalysis(ctx, rec); uerr != nil {
		r.log.ErrorContext(ctx, "store a partly reported analysis", "err", uerr)
	}
	m := queue.Message{Kind: queue.KindJob, TenantID: rec.TenantID, Org: rec.Org, Pipeline: rec.Pipeline,
		BuildNumber: rec.BuildNumber, BuildID: rec.BuildID, JobID: rec.JobID}
	return r.buildkiteFailure(ctx, m, err)
}

// buildkiteFailure turns a failed Buildkite call into the message's
// outcome: rate limits and outages go back to the queue; a revoked token
// fails the connection and the job; a missing build or a missing scope
// fails the job.
func (r *run) buildkiteFailure(ctx context.Context, m queue.Message, err error) Outcome {
	switch {
	case errors.Is(err, buildkite.ErrUnauthorized):
		if _, verr := r.w.cfg.Connections.Verify(context.WithoutCancel(ctx), m.TenantID); verr != nil {
			r.log.WarnContext(ctx, "re-verify a token Buildkite rejected", "err", verr)
		}
		return r.w.fail(ctx, r.log, m, fmt.Errorf("Buildkite rejected the API token (401): it was revoked or expired; connect a new token: %w", err))
	case errors.Is(err, buildkite.ErrForbidden):
		return r.w.fail(ctx, r.log, m, fmt.Errorf("the API token may not read this build (403): check its scopes and organization access: %w", err))
	case errors.Is(err, buildkite.ErrNotFound):
		return r.w.fail(ctx, r.log, m, fmt.Errorf("Buildkite does not know this build or job (404): %w", err))
	case buildkite.IsRetryable(err), errors.Is(err, context.DeadlineExceeded):
		return r.w.later(err, r.receives)
	case errors.Is(err, storage.ErrUnavailable):
		return r.w.later(err, r.receives)
	case ctx.Err() != nil:
		return r.w.later(err, r.receives)
	}
	var apiErr *buildkite.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 {
		return r.w.fail(ctx, r.log, m, fmt.Errorf("Buildkite refused a request: %w", err))
	}
	return r.w.later(err, r.receives)
}

// fail stores a failed analysis for the message (its job, or its build
// when the message names no job) and finishes the message: a failure that
// repeating cannot fix is recorded, not retried forever.
func (w *Worker) fail(ctx context.Context, log *slog.Logger, m queue.Message, cause error) Outcome {
	rec := w.newRecord(m, buildkite.Build{ID: m.BuildID, Number: m.BuildNumber}, buildkite.Job{ID: m.JobID})
	rec.State, rec.Error, rec.Reported = StateFailed, cause.Error(), true
	err := w.cfg.Store.CreateAnalysis(ctx, rec)
	switch {
	case errors.Is(err, storage.ErrConflict):
		// An analysis of this job is stored already; it stands, but one
		// whose report did not finish is finished here: what was not done
		// says why, so no record stays half done for ever.
		return w.finishUnreported(ctx, log, rec.TenantID, rec.Key(), cause)
	case err != nil:
		return w.later(fmt.Errorf("store failed analysis: %w", err), 1)
	}
	log.WarnContext(ctx, "job not analyzed", "err", cause)
	return Outcome{Verdict: Done, Err: cause}
}

// finishUnreported marks the stored analysis of key reported, recording
// cause as the reason for the annotation and the retry decision it lacks.
func (w *Worker) finishUnreported(ctx context.Context, log *slog.Logger, tenant, key string, cause error) Outcome {
	prev, err := w.cfg.Store.GetAnalysis(ctx, tenant, key)
	switch {
	case err != nil:
		return w.later(fmt.Errorf("load analysis: %w", err), 1)
	case prev.Reported:
		log.WarnContext(ctx, "job not reported again: its analysis stands", "err", cause)
		return Outcome{Verdict: Done, Err: cause}
	}
	why := "not reported: " + cause.Error()
	if prev.State == StateAnalyzed {
		if prev.Actions.Annotated == nil && prev.Actions.AnnotationSkipped == "" {
			prev.Actions.AnnotationSkipped = why
		}
		if prev.Actions.Retried == nil && prev.Actions.RetrySkipped == "" {
			prev.Actions.RetrySkipped = why
		}
	}
	prev.Reported = true
	if err := w.cfg.Store.UpdateAnalysis(ctx, prev); err != nil {
		return w.later(fmt.Errorf("store analysis: %w", err), 1)
	}
	log.WarnContext(ctx, "job analyzed but not reported", "state", string(prev.State), "err", cause)
	return Outcome{Verdict: Done, Err: cause}
}

// later sends a message back: after Buildkite's reset for a rate limit,
// after the next budget minute, else after an exponential backoff.
func (w *Worker) later(err error, receives int) Outcome {
	return Outcome{Verdict: Later, Delay: retryDelay(err, receives, w.now()), Err: err}
}

// retryDelay is how long a message that failed with err waits.
func retryDelay(err error, receives int, now time.Time) time.Duration {
	var apiErr *buildkite.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests {
		if apiErr.RetryAfter > 0 {
			return apiErr.RetryAfter
		}
		return rateLimitedDelay
	}
	if spent, ok := budgetSpent(err); ok {
		return max(spent.Until.Sub(now), time.Second)
	}
	if errors.Is(err, buildkite.ErrRateLimited) {
		return rateLimitedDelay
	}
	d := backoffMax
	if n := max(receives, 1) - 1; n < 16 {
		d = min(backoffBase<<n, backoffMax)
	}
	// Jitter spreads messages that failed together.
	return d/2 + rand.N(d/2+1)
}

// newRecord is the analysis of job in build with what the message and the
// build say; its result is empty.
func (w *Worker) newRecord(m queue.Message, build buildkite.Build, job buildkite.Job) Record {
	now := w.now().UTC()
	rec := Record{
		Result:      emptyResult(),
		TenantID:    m.TenantID,
		Org:         m.Org,
		Pipeline:    m.Pipeline,
		BuildNumber: m.BuildNumber,
		BuildID:     firstNonEmpty(build.ID, m.BuildID),
		JobID:       firstNonEmpty(job.ID, m.JobID),
		JobName:     firstNonEmpty(job.Name, job.Label),
		StepKey:     job.StepKey,
		Branch:      build.Branch,
		Commit:      build.Commit,
		Links:       Links{Build: build.WebURL, Job: job.WebURL},
		AnalyzedAt:  now,
	}
	rec.ID = rec.Key()
	return rec
}

// jobFailed reports whether a job ended failed: failed or timed out, or
// finished with a non-zero exit status, and not soft-failed.
func jobFailed(j buildkite.Job) bool {
	if j.Type != "" && j.Type != "script" {
		return false
	}
	if j.SoftFailed {
		return false
	}
	switch j.State {
	case "failed", "timed_out":
		return true
	case "finished", "broken":
		return j.ExitStatus != nil && *j.ExitStatus != 0
	}
	return false
}

func findJob(b buildkite.Build, id string) (buildkite.Job, bool) {
	for _, j := range b.Jobs {
		if j.ID == id {
			return j, true
		}
	}
	return buildkite.Job{ID: id}, false
}

func isLogGone(err error) bool { return errors.Is(err, buildkite.ErrNotFound) }

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Logger is the worker's logger.
func (w *Worker) Logger() *slog.Logger { return w.log }
