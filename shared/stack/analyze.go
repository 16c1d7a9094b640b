package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/secretstore"
	"github.com/kitefix/kitefix/shared/sqsqueue"
)

// Buildkite client settings of the analyze worker.
const (
	// analyzeCallTimeout bounds each call (for a log, getting its headers).
	analyzeCallTimeout = 15 * time.Second
	// analyzeMaxRateWait is the longest 429 wait sat out in the function;
	// a longer one sends the message back to the queue with that delay
	// instead of holding the function.
	analyzeMaxRateWait = 5 * time.Second
)

// AnalyzeClients returns the factory of per-token Buildkite clients of the
// analyze worker, each paced by the limiter it is given (the shared
// request budget).
func AnalyzeClients(cfg config.Config, log *slog.Logger) analysis.NewBuildkite {
	return func(token string, lim buildkite.Limiter) analysis.Buildkite {
		return buildkite.New(token,
			buildkite.WithBaseURL(cfg.BuildkiteAPIURL),
			buildkite.WithTimeout(analyzeCallTimeout),
			buildkite.WithMaxRateLimitWait(analyzeMaxRateWait),
			buildkite.WithLogger(log),
			buildkite.WithLimiter(lim))
	}
}

// tenantLister lists the tenants with a status record.
type tenantLister interface {
	Tenants(ctx context.Context) ([]string, error)
}

// connections gives the worker a tenant's connection, its token and
// re-verification, over the connection stores and service.
type connections struct {
	records connection.Records
	secrets connection.Secrets
	svc     *connection.Service
	tenants tenantLister
	prefix  string
}

var _ analysis.Connections = connections{}

func (c connections) GetConnection(ctx context.Context, tenant string) (connection.Record, error) {
	return c.records.GetConnection(ctx, tenant)
}

func (c connections) Token(ctx context.Context, tenant string) (string, error) {
	return c.secrets.GetSecret(ctx, connection.TokenSecretName(c.prefix, tenant))
}

func (c connections) Verify(ctx context.Context, tenant string) (connection.Record, error) {
	return c.svc.Verify(ctx, tenant)
}

func (c connections) Tenants(ctx context.Context) ([]string, error) { return c.tenants.Tenants(ctx) }

func secretPrefix(cfg config.Config) string {
	if cfg.SecretPrefix == "" {
		return "kitefix/"
	}
	return cfg.SecretPrefix
}

// AWSAnalyze builds the analyze function over DynamoDB, Secrets Manager
// and SQS: the SQS batch handler and the scheduled reconcile pass.
func AWSAnalyze(ctx context.Context, cfg config.Config, log *slog.Logger) (func(context.Context, json.RawMessage) (events.SQSEventResponse, error), error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	ddb := dynamodb.NewFromConfig(awsCfg)
	sqsClient := sqs.NewFromConfig(awsCfg)
	records := dynamostore.New(ddb, cfg.TableName)
	secrets := secretstore.New(secretsmanager.NewFromConfig(awsCfg))
	analyses := dynamostore.NewAnalyses(ddb, cfg.TableName)
	svc := connection.NewService(connection.Config{
		Records:        records,
		Secrets:        secrets,
		Buildkite:      BuildkiteClients(cfg, log),
		SecretPrefix:   cfg.SecretPrefix,
		WebhookBaseURL: cfg.WebhookBaseURL,
		Logger:         log,
	})
	w := analysis.New(analysis.Config{
		Connections: connections{records: records, secrets: secrets, svc: svc, tenants: analyses, prefix: secretPrefix(cfg)},
		Store:       analyses,
		Budget:      dynamostore.NewBudget(ddb, cfg.TableName),
		Deliveries:  records,
		Queue:       sqsqueue.New(sqsClient, cfg.QueueURL),
		Buildkite:   AnalyzeClients(cfg, log),
		AutoRetry:   cfg.AutoRetry,
		Logger:      log,
	})
	return w.LambdaHandler(sqsqueue.NewRedelivery(sqsClient, cfg.QueueURL)), nil
}

// localQueue is the embedded durable queue as the worker pool sees it.
type localQueue struct{ store *localstore.Store }

var _ analysis.LocalQueue = localQueue{}

func (q localQueue) Receive(ctx context.Context, n int, visibility time.Duration) ([]analysis.QueuedMessage, error) {
	msgs, err := q.store.Receive(ctx, n, visibility)
	if err != nil {
		return nil, err
	}
	out := make([]analysis.QueuedMessage, len(msgs))
	for i, m := range msgs {
		out[i] = analysis.QueuedMessage{ID: m.ID, Body: m.Body, Receives: m.Receives}
	}
	return out, nil
}

func (q localQueue) Delete(ctx context.Context, id string) error { return q.store.Delete(ctx, id) }

func (q localQueue) ChangeVisibility(ctx context.Context, id string, delay time.Duration) error {
	return q.store.ChangeVisibility(ctx, id, delay)
}

// wakingQueue sends to the embedded queue and wakes the worker pool, so a
// queued job starts at once rather than at the pool's next poll.
type wakingQueue struct {
	store *localstore.Store
	pool  *analysis.Pool
}

func (q wakingQueue) Send(ctx context.Context, body []byte, dedupeID string) error {
	if err := q.store.Send(ctx, body, dedupeID); err != nil {
		return err
	}
	q.pool.Wake()
	return nil
}

// localWorker is the analyze worker of `kitefix serve` and its pool over
// the embedded queue.
func localWorker(store *localstore.Store, svc *connection.Service, cfg config.Config, log *slog.Logger) (*analysis.Worker, *analysis.Pool, wakingQueue) {
	q := wakingQueue{store: store}
	w := analysis.New(analysis.Config{
		Connections: connections{records: store, secrets: store, svc: svc, tenants: store, prefix: secretPrefix(cfg)},
		Store:       store,
		Budget:      store,
		Deliveries:  store,
		Queue:       &q,
		Buildkite:   AnalyzeClients(cfg, log),
		AutoRetry:   cfg.AutoRetry,
		Logger:      log,
	})
	pool := analysis.NewPool(w, localQueue{store: store}, analysis.DefaultConcurrency, analysis.DefaultShutdownGrace)
	q.pool = pool
	return w, pool, q
}

// RunWorker analyzes queued jobs and runs a reconcile pass every
// reconcileEvery (≤ 0: never), the first one period after the start,
// until ctx ends; then it lets in-flight jobs
// finish for a grace period and returns the rest to the queue, which a
// restart resumes. Call it once, before Close.
func (l *Local) RunWorker(ctx context.Context, reconcileEvery time.Duration) {
	// Messages the last process was working on when it died resume now,
	// not after their visibility timeout.
	if n, err := l.store.ReturnInFlight(ctx); err != nil {
		l.worker.Logger().Error("return the last run's in-flight jobs to the queue", "err", err)
	} else if n > 0 {
		l.worker.Logger().Info("resuming jobs the last run left unfinished", "jobs", n)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.pool.Run(ctx)
	}()
	if reconcileEvery > 0 {
		t := time.NewTicker(reconcileEvery)
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-t.C:
			}
			if _, err := l.worker.Reconcile(ctx); err != nil && ctx.Err() == nil {
				l.worker.Logger().Warn("reconcile pass incomplete", "err", err)
			}
		}
		t.Stop()
	}
	<-done
}

// Queue is where the local webhook path sends failed jobs: the embedded
// durable queue, waking the worker as it sends.
func (l *Local) Queue() interface {
	Send(ctx context.Context, body []byte, dedupeID string) error
} {
	return l.queue
}
