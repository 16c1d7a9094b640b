package analysis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/loganalysis"
)

// Baseline lookup limits.
const (
	// baselineBuilds is how many recent passed builds are searched for a
	// job of the same step: one request either way.
	baselineBuilds = 5
	// baselineTimeout bounds fetching and reading the passing log.
	baselineTimeout = 30 * time.Second
	// baselineTTL is how long a process reuses a baseline: the next failed
	// job of the same step usually follows soon, and a reuse saves two or
	// three requests.
	baselineTTL = 10 * time.Minute
	// maxCachedBaselines bounds the baselines a process keeps (each a few
	// MiB at most).
	maxCachedBaselines = 8
	// maxCachedPassedLists bounds the lists of passed builds a process
	// keeps, one per pipeline and branch; each holds only the numbers and
	// the passed jobs' ids and steps of baselineBuilds builds.
	maxCachedPassedLists = 64
	// baselineReserve is how many of the token's requests of the minute
	// must be left for a job to look for a baseline: the baseline costs up
	// to three requests and only sharpens the excerpts, while the build,
	// the log and the annotation of the jobs still queued need the rest.
	baselineReserve = 20
)

// passingLog is a baseline and the job it was made from; base is nil when
// no passing job of the step was found.
type passingLog struct {
	at   time.Time
	ref  Baseline
	base *loganalysis.Baseline
}

// baselineCache keeps recent baselines by tenant, org, pipeline, branch
// and step.
type baselineCache struct {
	mu      sync.Mutex
	entries map[string]passingLog
}

func (c *baselineCache) get(key string, now time.Time) (passingLog, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.Sub(e.at) > baselineTTL {
		return passingLog{}, false
	}
	return e, true
}

func (c *baselineCache) put(key string, e passingLog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]passingLog{}
	}
	if len(c.entries) >= maxCachedBaselines {
		evictOldest(c.entries, func(e passingLog) time.Time { return e.at })
	}
	c.entries[key] = e
}

// evictOldest deletes the entry of m whose time, as at reads it, is the
// oldest.
func evictOldest[V any](m map[string]V, at func(V) time.Time) {
	var oldest string
	for k, v := range m {
		if oldest == "" || at(v).Before(at(m[oldest])) {
			oldest = k
		}
	}
	delete(m, oldest)
}

// baseline finds the log of the same step in the most recent passed build
// of the pipeline on the job's branch (else the default branch) and reads
// it into a Baseline. Nil when there is none; a failure here never stops
// the analysis.
func (r *run) baseline(ctx context.Context, rec Record, job buildkite.Job) (*loganalysis.Baseline, *Baseline) {
	if r.w.cfg.NoBaseline || rec.Branch == "" {
		return nil, nil
	}
	if left, known := r.lim.left(); known && left < baselineReserve {
		r.log.InfoContext(ctx, "no baseline: the token's requests of this minute are nearly spent", "left", left)
		return nil, nil
	}
	step := job.StepKey
	if step == "" {
		step = "name:" + job.Name
	}
	key := rec.TenantID + "\x00" + rec.Org + "\x00" + rec.Pipeline + "\x00" + rec.Branch + "\x00" + step
	if e, ok := r.w.baselines.get(key, r.w.now()); ok {
		if e.base == nil {
			return nil, nil // none found lately: do not ask again yet
		}
		ref := e.ref
		return e.base, &ref
	}
	ctx, cancel := context.WithTimeout(ctx, baselineTimeout)
	defer cancel()
	base, ref, err := r.findBaseline(ctx, rec, job)
	if err != nil {
		r.log.InfoContext(ctx, "no baseline: analyzing without a passing log", "err", err)
		return nil, nil
	}
	if base == nil {
		r.w.baselines.put(key, passingLog{at: r.w.now()})
		return nil, nil
	}
	r.w.baselines.put(key, passingLog{at: r.w.now(), ref: *ref, base: base})
	return base, ref
}

func (r *run) findBaseline(ctx context.Context, rec Record, job buildkite.Job) (*loganalysis.Baseline, *Baseline, error) {
	builds, err := r.passedBuilds(ctx, rec, rec.Branch)
	if err != nil {
		return nil, nil, err
	}
	b, j, ok := sameStep(builds, job)
	if !ok {
		branch, err := r.defaultBranch(ctx, rec)
		if err != nil {
			return nil, nil, err
		}
		if branch == "" || branch == rec.Branch {
			return nil, nil, nil
		}
		if builds, err = r.passedBuilds(ctx, rec, branch); err != nil {
			return nil, nil, err
		}
		if b, j, ok = sameStep(builds, job); !ok {
			return nil, nil, nil
		}
	}
	rc, err := r.bk.JobLog(ctx, rec.Org, rec.Pipeline, b.Number, j.ID)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	base, err := loganalysis.NewBaseline(ctx, rc)
	if err != nil {
		return nil, nil, fmt.Errorf("read passing log: %w", err)
	}
	return base, &Baseline{BuildNumber: b.Number, JobID: j.ID}, nil
}

// defaultBranchTTL is how long a process trusts a pipeline's default
// branch: it rarely changes, and each read costs a request.
const defaultBranchTTL = time.Hour

type defaultBranch struct {
	at     time.Time
	branch string
}

// defaultBranch returns the pipeline's default branch: from the build's
// payload, which carries it, else from the process's cache when it is
// fresh, else read from the pipeline.
func (r *run) defaultBranch(ctx context.Context, rec Record) (string, error) {
	key := rec.TenantID + "\x00" + rec.Org + "\x00" + rec.Pipeline
	if r.pipelineDefault != "" {
		r.w.defaultBranches.Store(key, defaultBranch{at: r.w.now(), branch: r.pipelineDefault})
		return r.pipelineDefault, nil
	}
	if v, ok := r.w.defaultBranches.Load(key); ok {
		if d := v.(defaultBranch); r.w.now().Sub(d.at) < defaultBranchTTL {
			return d.branch, nil
		}
	}
	branch, err := r.bk.DefaultBranch(ctx, rec.Org, rec.Pipeline)
	if err != nil {
		return "", err
	}
	r.w.defaultBranches.Store(key, defaultBranch{at: r.w.now(), branch: branch})
	return branch, nil
}

// sameStep finds, newest first, a passed job of the same step key (else of
// the same name) as job.
func sameStep(builds []buildkite.Build, job buildkite.Job) (buildkite.Build, buildkite.Job, bool) {
	for _, b := range builds {
		for _, j := range b.Jobs {
			if j.State != "passed" {
				continue
			}
			if (job.StepKey != "" && j.StepKey == job.StepKey) || (job.StepKey == "" && job.Name != "" && j.Name == job.Name) {
				return b, j, true
			}
		}
	}
	return buildkite.Build{}, buildkite.Job{}, false
}

// passedList is a pipeline's recent passed builds on one branch, as far as
// sameStep reads them. ready is closed once builds and err are set.
type passedList struct {
	at     time.Time
	ready  chan struct{}
	builds []buildkite.Build
	err    error
}

// passedLists keeps recent passed-build lists by tenant, org, pipeline and
// branch, so the failed jobs of one build (or of one branch) share a
// request; a lookup already under way is waited for, not repeated.
type passedLists struct {
	mu      sync.Mutex
	entries map[string]*passedList
}

// passedBuilds returns the pipeline's recent passed builds on branch.
func (r *run) passedBuilds(ctx context.Context, rec Record, branch string) ([]buildkite.Build, error) {
	key := rec.TenantID + "\x00" + rec.Org + "\x00" + rec.Pipeline + "\x00" + branch
	c := &r.w.passed
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && r.w.now().Sub(e.at) <= baselineTTL {
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			return e.builds, nil
		}
		// The lookup under way failed: try again with this job's own
		// deadline.
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return r.passedBuilds(ctx, rec, branch)
	}
	e := &passedList{at: r.w.now(), ready: make(chan struct{})}
	if c.entries == nil {
		c.entries = map[string]*passedList{}
	}
	if len(c.entries) >= maxCachedPassedLists {
		evictOldest(c.entries, func(e *passedList) time.Time { return e.at })
	}
	c.entries[key] = e
	c.mu.Unlock()

	builds, err := r.bk.RecentPassedBuilds(ctx, rec.Org, rec.Pipeline, branch, baselineBuilds)
	e.builds, e.err = slimBuilds(builds), err
	close(e.ready)
	if err != nil {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return nil, err
	}
	return e.builds, nil
}

// slimBuilds keeps of builds what sameStep reads: the numbers and the
// passed jobs' ids, states, steps and names.
func slimBuilds(builds []buildkite.Build) []buildkite.Build {
	out := make([]buildkite.Build, 0, len(builds))
	for _, b := range builds {
		sb := buildkite.Build{Number: b.Number}
		for _, j := range b.Jobs {
			if j.State == "passed" {
				sb.Jobs = append(sb.Jobs, buildkite.Job{ID: j.ID, State: j.State, StepKey: j.StepKey, Name: j.Name})
			}
		}
		out = append(out, sb)
	}
	return out
}
