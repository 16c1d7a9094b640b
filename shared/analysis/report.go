package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/ctxtime"
	"github.com/kitefix/kitefix/shared/loganalysis"
	"github.com/kitefix/kitefix/shared/storage"
)

// Why a retry is skipped (recorded in actions.retry_skipped).
const (
	skipAutoRetryOff   = "AUTO_RETRY is off"
	skipNoWriteBuilds  = "the token lacks the write_builds scope"
	skipIsRetry        = "the job is itself a retry"
	skipAlreadyRetried = "the job was already retried"
	skipNotFlaky       = "a test failure with no test known to be flaky: a retry would fail the same way"
	skipCategory       = "a %s failure: a retry would fail the same way"
)

// maxAnnotationWrites bounds the posts of one delivery's annotation. A
// re-post follows only a change of the build's report by another job while
// this one was posting, so the loop ends by itself once the build's jobs
// stop finishing; ten covers a wide step failing at once. Past it the
// delivery fails and is tried again, rather than leave an older report
// showing on the build.
const maxAnnotationWrites = 10

// maxReportWrites bounds the re-reads of a build report after a
// concurrent writer won: the jobs of a wide parallel step can fail at the
// same moment. reportBackoff spreads the writers out between tries.
const (
	maxReportWrites = 20
	reportBackoff   = 20 * time.Millisecond
)

// retry retries the job when the rules allow it and records the decision.
func (r *run) retry(ctx context.Context, log *slog.Logger, rec *Record, job buildkite.Job, build buildkite.Build) error {
	if rec.Actions.Retried != nil || rec.Actions.RetrySkipped != "" {
		return nil // decided by an earlier delivery
	}
	why, ok, err := r.retryRule(ctx, rec, job)
	if err != nil {
		return err
	}
	if !ok {
		rec.Actions.RetrySkipped = why
		return nil
	}
	nj, err := r.bk.RetryJob(ctx, rec.Org, rec.Pipeline, rec.BuildNumber, rec.JobID)
	var apiErr *buildkite.APIError
	switch {
	case err == nil:
		rec.Actions.Retried = &Retried{At: r.w.now().UTC(), JobID: nj.ID, Why: why}
		log.InfoContext(ctx, "job retried", "retry_job", nj.ID, "why", why)
		return nil
	case errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 &&
		apiErr.StatusCode != 401 && apiErr.StatusCode != 429:
		// Buildkite retries a job once; it refuses a job already retried
		// or no longer retryable.
		rec.Actions.RetrySkipped = "Buildkite refused the retry: " + apiErr.Message
		return nil
	}
	return fmt.Errorf("retry job: %w", err)
}

// retryRule decides whether the job may be retried: only with write_builds
// and AUTO_RETRY on, at most once, never a job that is itself a retry, and
// only for an infrastructure failure or a flaky test.
func (r *run) retryRule(ctx context.Context, rec *Record, job buildkite.Job) (string, bool, error) {
	switch {
	case !r.w.cfg.AutoRetry:
		return skipAutoRetryOff, false, nil
	case !r.conn.Capabilities.Retry:
		return skipNoWriteBuilds, false, nil
	case job.IsRetry():
		return skipIsRetry, false, nil
	case job.Retried || job.RetriedInJobID != "":
		return skipAlreadyRetried, false, nil
	}
	switch rec.Category {
	case loganalysis.CategoryInfrastructure:
		return "infrastructure: " + rec.Summary, true, nil
	case loganalysis.CategoryTest:
		if len(rec.FailingTests) == 0 {
			return skipNotFlaky, false, nil
		}
		flaky, source, err := r.flaky(ctx, rec)
		if err != nil {
			return "", false, err
		}
		var unknown []string
		for _, t := range rec.FailingTests {
			if !flaky(t.Name) {
				unknown = append(unknown, t.Name)
			}
		}
		if len(unknown) > 0 {
			return skipNotFlaky, false, nil
		}
		return fmt.Sprintf("flaky %s (%s)", plural(len(rec.FailingTests), "test", "tests"), source), true, nil
	}
	return fmt.Sprintf(skipCategory, rec.Category), false, nil
}

// flaky returns a test-name check: a test kitefix saw pass on the same
// commit of the pipeline, or that Buildkite Test Engine labels flaky.
func (r *run) flaky(ctx context.Context, rec *Record) (func(string) bool, string, error) {
	passed, err := r.w.cfg.Store.PassedTests(ctx, rec.TenantID, rec.Pipeline, rec.Commit)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, "", fmt.Errorf("load passed tests: %w", err)
	}
	seen := map[string]bool{}
	for _, t := range passed {
		seen[t] = true
	}
	all := true
	for _, t := range rec.FailingTests {
		all = all && seen[t.Name]
	}
	if all {
		return func(name string) bool { return seen[name] }, "seen passing on the same commit", nil
	}
	tests, err := r.w.flakyTests(ctx, r.bk, rec.TenantID, rec.Org)
	if err != nil {
		if errors.Is(err, buildkite.ErrForbidden) || errors.Is(err, buildkite.ErrNotFound) {
			// No Test Engine, or no read_suites: nothing is known flaky.
			r.log.InfoContext(ctx, "Test Engine flaky tests unavailable", "err", err)
			tests = nil
		} else {
			return nil, "", err
		}
	}
	return func(name string) bool {
		if seen[name] {
			return true
		}
		for _, t := range tests {
			if testMatches(name, t) {
				return true
			}
		}
		return false
	}, "Buildkite Test Engine lists them as flaky", nil
}

// testMatches reports whether a failing test name from a log names the
// Test Engine test t: its name alone or with its scope.
func testMatches(name string, t buildkite.Test) bool {
	if name == "" || t.Name == "" {
		return false
	}
	if name == t.Name {
		return true
	}
	if t.Scope == "" {
		return false
	}
	// How runners join a test's scope and name: RSpec and Jest's JSON
	// (" "), Jest's console (" › "), JUnit and pytest's classes (".",
	// "::"), Minitest ("#"), go test's subtests ("/").
	for _, sep := range []string{" ", " › ", ".", "#", "/", "::"} {
		if name == t.Scope+sep+t.Name {
			return true
		}
	}
	return false
}

// flakyTTL is how long a process keeps an organization's flaky tests: the
// list changes slowly, and each read costs requests from the budget.
const flakyTTL = 10 * time.Minute

type flakyEntry struct {
	at    time.Time
	tests []buildkite.Test
}

func (w *Worker) flakyTests(ctx context.Context, bk Buildkite, tenant, org string) ([]buildkite.Test, error) {
	key := tenant + "\x00" + org
	if v, ok := w.flakyCache.Load(key); ok {
		if e := v.(flakyEntry); w.now().Sub(e.at) < flakyTTL {
			return e.tests, nil
		}
	}
	tests, err := bk.FlakyTests(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("list flaky tests: %w", err)
	}
	w.flakyCache.Store(key, flakyEntry{at: w.now(), tests: tests})
	return tests, nil
}

// notePasses records, for the build's commit, the failing tests of jobs
// kitefix analyzed whose retry then passed: those tests pass on the commit.
func (r *run) notePasses(ctx context.Context, log *slog.Logger, tenant string, build buildkite.Build) {
	if build.Commit == "" {
		return
	}
	for _, j := range build.Jobs {
		if j.State != "passed" || !j.IsRetry() {
			continue
		}
		prev, err := r.w.cfg.Store.GetAnalysis(ctx, tenant, "job:"+j.RetrySource.JobID)
		if err != nil || len(prev.FailingTests) == 0 {
			continue
		}
		names := make([]string, len(prev.FailingTests))
		for i, t := range prev.FailingTests {
			names[i] = t.Name
		}
		if err := r.w.cfg.Store.AddPassedTests(ctx, tenant, build.Pipeline.Slug, build.Commit, names); err != nil {
			log.WarnContext(ctx, "record tests that passed on retry", "err", err)
		}
	}
}

// annotate adds the job to its build's report and posts the report as the
// build's annotation, replacing the previous one.
func (r *run) annotate(ctx context.Context, log *slog.Logger, rec *Record) error {
	if rec.Actions.Annotated != nil {
		return nil
	}
	if !r.conn.Capabilities.Annotate {
		rec.Actions.AnnotationSkipped = skipNoWriteBuilds
		return nil
	}
	rep, err := r.addToReport(ctx, *rec)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		body := rep.Markdown()
		err := r.bk.CreateAnnotation(ctx, rec.Org, rec.Pipeline, rec.BuildNumber, buildkite.Annotation{
			Style: AnnotationStyle, Context: AnnotationContext, Body: body,
		})
		var apiErr *buildkite.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 &&
			apiErr.StatusCode != 401 && apiErr.StatusCode != 429 {
			// Refused for good (a scope taken away, a build deleted):
			// record it rather than try again.
			rec.Actions.AnnotationSkipped = "Buildkite refused the annotation: " + apiErr.Message
			return nil
		}
		if err != nil {
			return fmt.Errorf("annotate build: %w", err)
		}
		// Another job of the build may have changed the report while this
		// one was posted; post again until the newest is shown.
		latest, err := r.w.cfg.Store.GetBuildReport(ctx, rec.TenantID, rec.BuildID)
		if err != nil || latest.Version == rep.Version {
			break
		}
		if i+1 == maxAnnotationWrites {
			return fmt.Errorf("annotate build: the build's report changed %d times while it was posted", maxAnnotationWrites)
		}
		rep = latest
	}
	rec.Actions.Annotated = &Annotated{At: r.w.now().UTC()}
	log.DebugContext(ctx, "build annotated", "jobs", len(rep.Jobs))
	return nil
}

// addToReport adds rec to its build's stored report, retrying when a
// concurrent writer won, and returns the report as stored.
func (r *run) addToReport(ctx context.Context, rec Record) (BuildReport, error) {
	store := r.w.cfg.Store
	for try := range maxReportWrites {
		if try > 0 {
			if err := ctxtime.Sleep(ctx, rand.N(reportBackoff*time.Duration(min(try, 5)))); err != nil {
				return BuildReport{}, err
			}
		}
		rep, err := store.GetBuildReport(ctx, rec.TenantID, rec.BuildID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			rep = BuildReport{TenantID: rec.TenantID, Org: rec.Org, Pipeline: rec.Pipeline, BuildNumber: rec.BuildNumber, BuildID: rec.BuildID}
		case err != nil:
			return BuildReport{}, fmt.Errorf("load build report: %w", err)
		}
		next := rep.with(reportJob(rec))
		err = store.PutBuildReport(ctx, next)
		if err == nil {
			next.Version++
			return next, nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return BuildReport{}, fmt.Errorf("store build report: %w", err)
		}
	}
	return BuildReport{}, fmt.Errorf("store build report: %w: %d concurrent writers won", storage.ErrUnavailable, maxReportWrites)
}
