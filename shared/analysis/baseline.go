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
		var oldest string
		for k, v := range c.entries {
			if oldest == "" || v.at.Before(c.entries[oldest].at) {
				oldest = k
			}
		}
		delete(c.entries, oldest)
	}
	c.entries[key] = e
}

// baseline finds the log of the same step in the most recent passed build
// of the pipeline on the job's branch (else the default branch) and reads
// it into a Baseline. Nil when there is none; a failure here never stops
// the analysis.
func (r *run) baseline(ctx context.Context, rec Record, job buildkite.Job) (*loganalysis.Baseline, *Baseline) {
	if r.w.cfg.NoBaseline || rec.Branch == "" {
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
	builds, err := r.bk.RecentPassedBuilds(ctx, rec.Org, rec.Pipeline, rec.Branch, baselineBuilds)
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
		if builds, err = r.bk.RecentPassedBuilds(ctx, rec.Org, rec.Pipeline, branch, baselineBuilds); err != nil {
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

// defaultBranch returns the pipeline's default branch, from the process's
// cache when it is fresh.
func (r *run) defaultBranch(ctx context.Context, rec Record) (string, error) {
	key := rec.TenantID + "\x00" + rec.Org + "\x00" + rec.Pipeline
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
