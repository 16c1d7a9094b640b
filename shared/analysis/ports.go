package analysis

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
)

// Store keeps analyses, the per-build report the annotation is made from,
// the reconcile marks and the tests seen passing. Implementations return
// storage.ErrNotFound, storage.ErrConflict and storage.ErrUnavailable
// (wrapped).
type Store interface {
	// CreateAnalysis stores rec unless the tenant already has an analysis
	// with the same Key (then storage.ErrConflict). It keeps it for
	// Retention.
	CreateAnalysis(ctx context.Context, rec Record) error
	// UpdateAnalysis replaces a stored analysis (same tenant and Key).
	UpdateAnalysis(ctx context.Context, rec Record) error
	// GetAnalysis returns the tenant's analysis of key, or storage.ErrNotFound.
	GetAnalysis(ctx context.Context, tenant, key string) (Record, error)
	// ListAnalyses returns up to limit of the tenant's analyses, newest
	// first, starting after cursor (""; the first page), and the cursor of
	// the next page ("" on the last).
	ListAnalyses(ctx context.Context, tenant string, limit int, cursor string) ([]Record, string, error)

	// GetBuildReport returns the report of a build, or storage.ErrNotFound.
	GetBuildReport(ctx context.Context, tenant, buildID string) (BuildReport, error)
	// PutBuildReport stores rep if the stored version equals rep.Version
	// (0: none stored) and stores version rep.Version+1; otherwise
	// storage.ErrConflict.
	PutBuildReport(ctx context.Context, rep BuildReport) error

	// ReconcileMark returns when the last reconcile pass of the tenant's
	// organization started, or storage.ErrNotFound.
	ReconcileMark(ctx context.Context, tenant, org string) (time.Time, error)
	// SetReconcileMark records when a reconcile pass started.
	SetReconcileMark(ctx context.Context, tenant, org string, at time.Time) error

	// AddPassedTests records tests seen passing on a commit of a pipeline.
	AddPassedTests(ctx context.Context, tenant, pipeline, commit string, tests []string) error
	// PassedTests returns the tests seen passing on a commit of a pipeline.
	PassedTests(ctx context.Context, tenant, pipeline, commit string) ([]string, error)
}

// ErrBadCursor is a listing cursor the store did not make.
var ErrBadCursor = errors.New("bad cursor")

// Budget counts a token's Buildkite requests per minute across every
// process that shares the store.
type Budget interface {
	// TakeRequest counts one request against key (a digest of the token)
	// in the minute starting at window, if fewer than limit were counted;
	// it reports whether the request may be sent.
	TakeRequest(ctx context.Context, key string, window time.Time, limit int) (bool, error)
}

// Deliveries are the dedupe records of queued work ("job:<id>",
// "build:<id>"), shared with the webhook function.
type Deliveries interface {
	// ClaimDelivery records key for tenant until expires, or returns
	// storage.ErrConflict when a record is already held.
	ClaimDelivery(ctx context.Context, tenant, key string, expires time.Time) error
	// ConfirmDelivery sets the record's expiry once the work is queued or
	// done.
	ConfirmDelivery(ctx context.Context, tenant, key string, expires time.Time) error
	// ReleaseDelivery removes the record so the work can be queued again.
	ReleaseDelivery(ctx context.Context, tenant, key string) error
}

// Connections loads a tenant's connection and its token, and re-verifies a
// token Buildkite rejected (which moves the connection to failed).
type Connections interface {
	GetConnection(ctx context.Context, tenant string) (connection.Record, error)
	Token(ctx context.Context, tenant string) (string, error)
	Verify(ctx context.Context, tenant string) (connection.Record, error)
	// Tenants lists the tenants with a connection, for the reconcile pass.
	Tenants(ctx context.Context) ([]string, error)
}

// Enqueuer puts a message on the analyze queue.
type Enqueuer interface {
	Send(ctx context.Context, body []byte, dedupeID string) error
}

// Buildkite is what the worker asks of Buildkite with one tenant's token.
type Buildkite interface {
	Build(ctx context.Context, org, pipeline string, number int) (buildkite.Build, error)
	JobLog(ctx context.Context, org, pipeline string, number int, jobID string) (io.ReadCloser, error)
	CreateAnnotation(ctx context.Context, org, pipeline string, number int, a buildkite.Annotation) error
	RetryJob(ctx context.Context, org, pipeline string, number int, jobID string) (buildkite.Job, error)
	ListFailedBuilds(ctx context.Context, org string, since time.Time) ([]buildkite.Build, error)
	FlakyTests(ctx context.Context, org string) ([]buildkite.Test, error)
	RecentPassedBuilds(ctx context.Context, org, pipeline, branch string, n int) ([]buildkite.Build, error)
	DefaultBranch(ctx context.Context, org, pipeline string) (string, error)
}

// NewBuildkite makes the Buildkite client of a token; limiter paces it.
type NewBuildkite func(token string, limiter buildkite.Limiter) Buildkite
