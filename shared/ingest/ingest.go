// Package ingest receives Buildkite webhook deliveries: it finds the tenant
// behind the webhook id, authenticates the delivery with the tenant's
// webhook secret, reads the payload, decides whether it names failed work,
// and queues that work once. The same Handler serves the Lambda function URL
// and `POST /hooks/{id}` on `kitefix serve`.
//
// Every delivery gets one log line (tenant, event, outcome, status,
// duration, and the org, pipeline, build and job when known) and one of the
// answers in the status table (see statusOf).
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/storage"
	"github.com/kitefix/kitefix/shared/webhook"
)

// MaxBody is the largest delivery accepted. Buildkite's payloads are a few
// KiB; a mebibyte leaves room for big build metadata while bounding the
// work an unauthenticated caller can ask for.
const MaxBody = 1 << 20

// A delivery's work is claimed in two steps. The claim is first written
// for ClaimLease only; once the message is on the queue it is confirmed for
// ClaimTTL. A function that dies between the two (a hard crash, a timeout
// that stops it before it can release the claim) leaves a claim that lapses
// within ClaimLease, so the next delivery of the same work, or the reconcile
// pass, queues it: the reconcile pass looks back over the previous pass's
// start by more than ClaimLease plus the time Buildkite takes to deliver,
// so the pass after the lapse still lists the build. A claim written for
// ClaimTTL at once would hide that failed job for a week.
const (
	// ClaimLease covers claim, send and confirm: the webhook function
	// stops after seconds, so two minutes is ample, and it is short next
	// to the reconcile pass's overlap.
	ClaimLease = 2 * time.Minute
	// ClaimTTL is how long a queued delivery's claim lasts: far longer
	// than Buildkite redelivers or the reconcile pass looks back, and the
	// item expires by itself afterwards.
	ClaimTTL = 7 * 24 * time.Hour
)

// Routes finds the tenant behind a webhook id and its status record.
type Routes interface {
	WebhookTenant(ctx context.Context, webhookID string) (string, error)
	GetConnection(ctx context.Context, tenant string) (connection.Record, error)
}

// Secrets reads the tenant's webhook keys.
type Secrets interface {
	GetSecret(ctx context.Context, name string) (string, error)
}

// Deliveries records which work is queued, so a delivery seen twice is
// queued once, and when each tenant's webhook last delivered.
type Deliveries interface {
	// ClaimDelivery returns storage.ErrConflict when an unexpired claim
	// exists.
	ClaimDelivery(ctx context.Context, tenant, key string, expires time.Time) error
	// ConfirmDelivery sets a claim's expiry once its work is queued,
	// writing the claim if it is gone.
	ConfirmDelivery(ctx context.Context, tenant, key string, expires time.Time) error
	// ReleaseDelivery undoes a claim; a missing one is fine.
	ReleaseDelivery(ctx context.Context, tenant, key string) error
	// NoteDelivery records that tenant's webhook delivered at at.
	NoteDelivery(ctx context.Context, tenant string, at time.Time) error
}

// Queue takes messages for the analyze function.
type Queue interface {
	Send(ctx context.Context, body []byte, dedupeID string) error
}

// Config wires a Handler. Everything but Now and Logger is required.
type Config struct {
	Routes       Routes
	Secrets      Secrets
	Deliveries   Deliveries
	Queue        Queue
	SecretPrefix string // default "kitefix/"
	Now          func() time.Time
	Logger       *slog.Logger
}

// Handler handles webhook deliveries. It is safe for concurrent use; it
// keeps webhook keys for at most keyTTL.
type Handler struct {
	cfg   Config
	keys  *keyCache
	noted *noteThrottle
}

// New returns a Handler over cfg.
func New(cfg Config) *Handler {
	if cfg.SecretPrefix == "" {
		cfg.SecretPrefix = "kitefix/"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, keys: newKeyCache(), noted: newNoteThrottle()}
}

// Request is one delivery as plain values: the webhook id from the path,
// the three Buildkite headers and the raw (already base64-decoded) body.
type Request struct {
	WebhookID string
	Event     string
	Signature string
	Token     string
	Body      []byte
}

// Response is the answer: a status and a JSON body.
type Response struct {
	Status int
	Body   []byte
}

// delivery collects what the log line of one delivery says.
type delivery struct {
	tenant  string
	event   string
	outcome outcome
	summary webhook.Summary
	check   string // which authentication check failed
	reason  string // why nothing was queued, or what was malformed
	kind    queue.Kind
	err     error
}

// Handle answers one delivery.
func (h *Handler) Handle(ctx context.Context, req Request) Response {
	start := h.cfg.Now()
	d := delivery{event: req.Event}
	d.outcome = h.handle(ctx, req, &d)
	resp := d.response()
	h.log(ctx, &d, resp.Status, h.cfg.Now().Sub(start))
	return resp
}

func (h *Handler) handle(ctx context.Context, req Request, d *delivery) outcome {
	if len(req.Body) > MaxBody {
		d.reason = fmt.Sprintf("body of %d bytes", len(req.Body))
		return outcomeTooLarge
	}
	if !validWebhookID(req.WebhookID) {
		// Not an id kitefix hands out: no need to ask the store.
		d.check = "unknown_webhook"
		return outcomeUnauthorized
	}
	keys, err := h.keysFor(ctx, req.WebhookID, false)
	if err != nil {
		return d.fail(err)
	}
	now := h.cfg.Now()
	a, f := assess(req, keys.tenant, keys.secrets(now), now)
	if f != nil && (f.check == "signature_mismatch" || f.check == "token_mismatch") && keys.reloadable(now) {
		// A secret rotated within the cache's lifetime: read it again.
		if keys, err = h.keysFor(ctx, req.WebhookID, true); err != nil {
			return d.fail(err)
		}
		a, f = assess(req, keys.tenant, keys.secrets(now), now)
	}
	d.tenant, d.summary = keys.tenant, a.summary
	if f != nil && f.outcome == outcomeUnauthorized {
		d.check = f.check
		return f.outcome
	}
	// Authenticated. A tenant that disconnected since its keys were
	// cached is refused before anything else is said.
	if err := h.connected(ctx, keys.tenant, req.WebhookID); err != nil {
		return d.fail(err)
	}
	h.note(ctx, keys.tenant, req.WebhookID, now)
	if f != nil {
		d.reason = f.reason
		return f.outcome
	}
	if !a.decision.Queue {
		d.reason = a.decision.Why
		if req.Event == webhook.EventPing {
			return outcomePing
		}
		return outcomeIgnored
	}
	d.kind = a.message.Kind
	return h.enqueue(ctx, a, d)
}

// assessment is what a delivery says, once authenticated and read.
type assessment struct {
	summary  webhook.Summary
	decision webhook.Decision
	message  queue.Message
	body     []byte // the encoded message, when one is to be queued
}

// failure is a delivery refused before any storage is touched.
type failure struct {
	outcome outcome
	check   string
	reason  string
}

// authChecks names, for the log, the authentication check that failed.
var authChecks = []struct {
	err   error
	check string
}{
	{webhook.ErrNoCredentials, "no_credentials"},
	{webhook.ErrMalformed, "malformed_signature"},
	{webhook.ErrStale, "stale_timestamp"},
	{webhook.ErrSignatureMismatch, "signature_mismatch"},
	{webhook.ErrTokenMismatch, "token_mismatch"},
	{webhook.ErrNoSecret, "no_secret"},
}

// assess is the handler's own work on a delivery, without I/O:
// authenticate with secrets at now, read the payload, decide, and build and
// encode tenant's message when there is work to queue.
func assess(req Request, tenant string, secrets []string, now time.Time) (assessment, *failure) {
	var a assessment
	if err := webhook.Verify(req.Signature, req.Token, req.Body, secrets, now); err != nil {
		check := "unauthenticated"
		for _, c := range authChecks {
			if errors.Is(err, c.err) {
				check = c.check
				break
			}
		}
		return a, &failure{outcome: outcomeUnauthorized, check: check}
	}
	if req.Event == "" {
		return a, &failure{outcome: outcomeMalformed, reason: "missing " + webhook.EventHeader + " header"}
	}
	s, err := webhook.Summarize(req.Body)
	if err != nil {
		return a, &failure{outcome: outcomeMalformed, reason: err.Error()}
	}
	a.summary = s
	if s.Event != "" && s.Event != req.Event {
		return a, &failure{outcome: outcomeMalformed, reason: fmt.Sprintf("event header %q but body event %q", req.Event, s.Event)}
	}
	a.decision = webhook.Decide(req.Event, s)
	if !a.decision.Queue {
		return a, nil
	}
	m, err := a.decision.Message(s, tenant, now)
	if err != nil {
		// A failed job that cannot be described must not be acknowledged.
		return a, &failure{outcome: outcomeMalformed, reason: err.Error()}
	}
	if a.body, err = queue.Encode(m); err != nil {
		return a, &failure{outcome: outcomeMalformed, reason: err.Error()}
	}
	a.message = m
	return a, nil
}

// enqueue claims the delivery's work for ClaimLease, sends its message and
// confirms the claim for ClaimTTL; a failed send releases the claim so
// Buildkite's or the reconcile pass's next attempt can queue it.
func (h *Handler) enqueue(ctx context.Context, a assessment, d *delivery) outcome {
	key := a.message.DedupeKey()
	err := h.cfg.Deliveries.ClaimDelivery(ctx, d.tenant, key, h.cfg.Now().Add(ClaimLease))
	switch {
	case errors.Is(err, storage.ErrConflict):
		return outcomeDuplicate
	case err != nil:
		d.err = fmt.Errorf("claim delivery: %w", err)
		return outcomeUnavailable
	}
	sendCtx, cancel := reserveForRelease(ctx)
	defer cancel()
	if err := h.cfg.Queue.Send(sendCtx, a.body, DedupeID(d.tenant, key)); err != nil {
		d.err = fmt.Errorf("send message: %w", err)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if rerr := h.cfg.Deliveries.ReleaseDelivery(rctx, d.tenant, key); rerr != nil {
			// The claim stays until it expires: say so loudly.
			d.err = fmt.Errorf("%w; release claim %s: %w", d.err, key, rerr)
		}
		return outcomeUnavailable
	}
	// The message is queued whatever happens next: a failed confirm only
	// lets a later delivery queue the work once more when the lease lapses,
	// and analysis takes a job twice without harm.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := h.cfg.Deliveries.ConfirmDelivery(cctx, d.tenant, key, h.cfg.Now().Add(ClaimTTL)); err != nil {
		h.cfg.Logger.WarnContext(ctx, "confirm delivery claim", "tenant", d.tenant, "job", a.message.JobID, "err", fmt.Errorf("confirm claim %s: %w", key, err))
	}
	return outcomeQueued
}

// releaseTimeout bounds undoing a claim after a failed send, which runs
// even when the request's context is done.
const releaseTimeout = 5 * time.Second

// releaseReserve is the part of a request's deadline kept back from the
// send, so a send that times out still leaves time to undo the claim before
// the function is stopped (a claim left behind would hide the job from the
// next attempt until ClaimLease lapses).
const releaseReserve = 2 * time.Second

// reserveForRelease returns ctx with its deadline moved releaseReserve
// earlier, when it has one far enough away.
func reserveForRelease(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 2*releaseReserve {
		return context.WithDeadline(ctx, dl.Add(-releaseReserve))
	}
	return ctx, func() {}
}

// webhookIDLen is the length of the webhook ids connect makes: 128 random
// bits in lower-case hex.
const webhookIDLen = 32

func validWebhookID(id string) bool {
	if len(id) != webhookIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// DedupeID is the queue's deduplication id for tenant's work named key: the
// key behind a digest of the tenant, so it stays short (SQS allows 128
// characters) and tenants never collide.
func DedupeID(tenant, key string) string {
	sum := sha256.Sum256([]byte(tenant))
	return hex.EncodeToString(sum[:8]) + ":" + key
}

// connected checks that tenant is connected and that webhookID is still its
// webhook. It reads the record every time, so a disconnect takes effect at
// once whatever the key cache holds.
func (h *Handler) connected(ctx context.Context, tenant, webhookID string) error {
	rec, err := h.cfg.Routes.GetConnection(ctx, tenant)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return &authError{check: "not_connected"}
	case err != nil:
		return fmt.Errorf("load connection: %w", err)
	case rec.State != connection.StateConnected:
		return &authError{check: "not_connected"}
	case rec.Webhook == nil || rec.Webhook.ID != webhookID:
		return &authError{check: "webhook_replaced"}
	}
	return nil
}

// authError is an authentication failure found in storage.
type authError struct{ check, tenant string }

func (e *authError) Error() string { return "unauthenticated: " + e.check }

// fail records err as the delivery's outcome.
func (d *delivery) fail(err error) outcome {
	var ae *authError
	if errors.As(err, &ae) {
		d.check = ae.check
		if ae.tenant != "" {
			d.tenant = ae.tenant
		}
		return outcomeUnauthorized
	}
	d.err = err
	return outcomeUnavailable
}

// note records the delivery time, at most once per noteEvery per tenant and
// webhook in this process (a disconnect forgets the note, and the webhook
// a reconnect makes must get its first delivery noted at once). It never
// fails the delivery.
func (h *Handler) note(ctx context.Context, tenant, webhookID string, now time.Time) {
	key := tenant + "\x00" + webhookID
	if !h.noted.due(key, now) {
		return
	}
	if err := h.cfg.Deliveries.NoteDelivery(ctx, tenant, now); err != nil {
		h.noted.forget(key)
		h.cfg.Logger.WarnContext(ctx, "note webhook delivery", "tenant", tenant, "err", err)
	}
}

func (h *Handler) log(ctx context.Context, d *delivery, status int, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("tenant", d.tenant),
		slog.String("event", d.event),
		slog.String("outcome", string(d.outcome)),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000),
	}
	s := d.summary
	if org := s.Org(); org != "" {
		attrs = append(attrs, slog.String("org", org))
	}
	if s.Pipeline.Slug != "" {
		attrs = append(attrs, slog.String("pipeline", s.Pipeline.Slug))
	}
	if s.Build.Number != 0 {
		attrs = append(attrs, slog.Int("build", s.Build.Number))
	}
	if s.Job.ID != "" {
		attrs = append(attrs, slog.String("job", s.Job.ID))
	}
	if d.kind != "" {
		attrs = append(attrs, slog.String("kind", string(d.kind)))
	}
	if d.check != "" {
		attrs = append(attrs, slog.String("check", d.check))
	}
	if d.reason != "" {
		attrs = append(attrs, slog.String("reason", d.reason))
	}
	if d.err != nil {
		attrs = append(attrs, slog.String("err", d.err.Error()))
	}
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case status >= 400:
		level = slog.LevelWarn
	}
	h.cfg.Logger.LogAttrs(ctx, level, "webhook delivery", attrs...)
}
