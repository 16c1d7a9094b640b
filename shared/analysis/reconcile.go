package analysis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/storage"
)

// Reconcile timing.
const (
	// firstLookback is how far the first pass of an organization looks
	// back: a few schedule periods, without reaching into old history.
	firstLookback = time.Hour
	// reconcileOverlap widens each pass so a build that finished while the
	// previous pass listed is not missed; the dedupe records keep the
	// overlap from queuing anything twice. It also outlasts the webhook's
	// claim lease (ingest.ClaimLease, two minutes) plus the minutes
	// Buildkite may take to deliver: a webhook function that dies after
	// claiming a job leaves a claim that lapses, and the pass after the
	// lapse must still list that build.
	reconcileOverlap = 10 * time.Minute
)

// ReconcileResult counts what a pass did.
type ReconcileResult struct {
	Organizations int
	Builds        int
	Queued        int
	Requests      int
}

// Reconcile lists, for every connected tenant and organization, the builds
// that failed since the previous pass and enqueues each failed job no
// webhook (or earlier pass) queued. A failing organization does not stop
// the others; its mark stays, so the next pass covers it.
func (w *Worker) Reconcile(ctx context.Context) (ReconcileResult, error) {
	var total ReconcileResult
	if w.cfg.Queue == nil || w.cfg.Deliveries == nil {
		return total, errors.New("reconcile: no queue or dedupe store")
	}
	tenants, err := w.cfg.Connections.Tenants(ctx)
	if err != nil {
		return total, fmt.Errorf("reconcile: list tenants: %w", err)
	}
	var errs []error
	for _, tenant := range tenants {
		res, err := w.reconcileTenant(ctx, tenant)
		total.Organizations += res.Organizations
		total.Builds += res.Builds
		total.Queued += res.Queued
		total.Requests += res.Requests
		if err != nil {
			errs = append(errs, err)
			w.log.ErrorContext(ctx, "reconcile tenant", "tenant", tenant, "err", err)
		}
	}
	w.log.InfoContext(ctx, "reconcile pass", "tenants", len(tenants), "organizations", total.Organizations,
		"builds", total.Builds, "queued", total.Queued, "requests", total.Requests)
	return total, errors.Join(errs...)
}

func (w *Worker) reconcileTenant(ctx context.Context, tenant string) (ReconcileResult, error) {
	var res ReconcileResult
	conn, err := w.cfg.Connections.GetConnection(ctx, tenant)
	if err != nil {
		return res, fmt.Errorf("load connection: %w", err)
	}
	if conn.State != connection.StateConnected {
		return res, nil
	}
	token, err := w.cfg.Connections.Token(ctx, tenant)
	if err != nil {
		return res, fmt.Errorf("load token: %w", err)
	}
	lim := newBudgetLimiter(w.cfg.Budget, token, w.now)
	bk := w.cfg.Buildkite(token, lim)
	defer func() { res.Requests = lim.requests() }()
	var errs []error
	for _, org := range conn.Organizations {
		n, builds, err := w.reconcileOrg(ctx, bk, tenant, org.Slug)
		res.Organizations++
		res.Builds += builds
		res.Queued += n
		if errors.Is(err, buildkite.ErrUnauthorized) {
			if _, verr := w.cfg.Connections.Verify(ctx, tenant); verr != nil {
				w.log.WarnContext(ctx, "re-verify a token Buildkite rejected", "tenant", tenant, "err", verr)
			}
			return res, fmt.Errorf("organization %s: %w", org.Slug, err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("organization %s: %w", org.Slug, err))
		}
	}
	return res, errors.Join(errs...)
}

func (w *Worker) reconcileOrg(ctx context.Context, bk Buildkite, tenant, org string) (queued, nbuilds int, err error) {
	start := w.now().UTC()
	since, err := w.cfg.Store.ReconcileMark(ctx, tenant, org)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		since = start.Add(-firstLookback)
	case err != nil:
		return 0, 0, fmt.Errorf("load reconcile mark: %w", err)
	default:
		since = since.Add(-reconcileOverlap)
	}
	builds, err := bk.ListFailedBuilds(ctx, org, since)
	if err != nil {
		return 0, 0, err
	}
	for _, b := range builds {
		for _, j := range b.Jobs {
			if !jobFailed(j) {
				continue
			}
			ok, err := w.enqueueJob(ctx, tenant, org, b, j)
			if err != nil {
				return queued, len(builds), err
			}
			if ok {
				queued++
			}
		}
	}
	if err := w.cfg.Store.SetReconcileMark(ctx, tenant, org, start); err != nil {
		return queued, len(builds), fmt.Errorf("store reconcile mark: %w", err)
	}
	return queued, len(builds), nil
}

// enqueueJob queues a failed job unless it has a dedupe record. The record
// is claimed for a lease first, released if the send fails so a later pass
// or a webhook can queue it, and confirmed once the job is queued.
func (w *Worker) enqueueJob(ctx context.Context, tenant, org string, b buildkite.Build, j buildkite.Job) (bool, error) {
	m := queue.Message{
		Kind: queue.KindJob, TenantID: tenant, Org: org, Pipeline: b.Pipeline.Slug,
		BuildNumber: b.Number, BuildID: b.ID, JobID: j.ID, Reason: queue.ReasonReconcile, QueuedAt: w.now().UTC(),
	}
	body, err := queue.Encode(m)
	if err != nil {
		w.log.WarnContext(ctx, "failed job not queued: incomplete build", "tenant", tenant, "org", org, "build", b.Number, "job", j.ID, "err", err)
		return false, nil
	}
	key := m.DedupeKey()
	err = w.cfg.Deliveries.ClaimDelivery(ctx, tenant, key, w.now().Add(queueLease))
	if errors.Is(err, storage.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", key, err)
	}
	if err := w.cfg.Queue.Send(ctx, body, key); err != nil {
		if rerr := w.cfg.Deliveries.ReleaseDelivery(context.WithoutCancel(ctx), tenant, key); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release %s: %w", key, rerr))
		}
		return false, fmt.Errorf("enqueue %s: %w", key, err)
	}
	if err := w.cfg.Deliveries.ConfirmDelivery(ctx, tenant, key, w.now().Add(deliveryTTL)); err != nil {
		// Queued all the same; the lease lapses and the analysis record
		// keeps a second queuing from doing the work twice.
		w.log.WarnContext(ctx, "confirm the claim of a queued job", "tenant", tenant, "job", j.ID, "err", err)
	}
	w.log.InfoContext(ctx, "failed job queued by reconcile", "tenant", tenant, "org", org, "pipeline", m.Pipeline, "build", m.BuildNumber, "job", j.ID)
	return true, nil
}
