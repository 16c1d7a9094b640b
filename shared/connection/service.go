package connection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/kitefix/kitefix/shared/storage"
)

// Service runs the connection lifecycle for every tenant.
//
// Records and secrets live in two services with no transaction across
// them, so every change to a tenant's connection holds the tenant's lease
// (Records.TakeLease) around its storage writes, orders the writes so the
// record is written last, and undoes its earlier writes when a later one
// fails. The slow part, asking Buildkite, happens before the lease is taken.
// The record write is conditional on the version read under the lease, so
// a holder that outlived its lease (LeaseTTL) cannot overwrite the record
// of the one that took over; it undoes its writes and answers conflict.
type Service struct {
	records        Records
	secrets        Secrets
	newBuildkite   NewBuildkite
	secretPrefix   string
	webhookBaseURL string
	now            func() time.Time
	random         io.Reader
	log            *slog.Logger
	leaseWait      time.Duration
}

// Config wires a Service. Records, Secrets and Buildkite are required.
type Config struct {
	Records        Records
	Secrets        Secrets
	Buildkite      NewBuildkite
	SecretPrefix   string // default "kitefix/"
	WebhookBaseURL string // the webhook URL is WebhookBaseURL + "/hooks/" + id
	Now            func() time.Time
	Random         io.Reader
	Logger         *slog.Logger
	// LeaseWait is how long a change waits for another change of the same
	// tenant to finish before it answers conflict (default DefaultLeaseWait).
	LeaseWait time.Duration
}

// Lease timing.
const (
	// LeaseTTL is how long a lease lasts. It is longer than the connect
	// function's timeout (29 s at most), so a live holder never loses its
	// lease, and short enough that a holder that died stops blocking its
	// tenant within a minute.
	LeaseTTL = 45 * time.Second
	// DefaultLeaseWait is how long a change waits for the lease. A holder
	// makes a handful of storage calls (tens of milliseconds), so this
	// covers a queue of dozens of concurrent changes of one tenant and
	// stays well inside the API's 29 s timeout.
	DefaultLeaseWait = 10 * time.Second
	// leasePollMin and leasePollMax bound the pause between attempts to
	// take a busy lease: short enough to follow a quick holder, long
	// enough that dozens of waiters do not flood the store.
	leasePollMin = 5 * time.Millisecond
	leasePollMax = 250 * time.Millisecond
)

// RotateCooldown is how soon after one rotation another one is refused as
// conflict. A second rotation that soon is a double submit or a concurrent
// request, not someone who already pasted the new secret into Buildkite;
// refusing it keeps the secret the first request handed out verifying
// (two rotations would push it out of the previous slot).
const RotateCooldown = 30 * time.Second

// NewService returns a Service over cfg.
func NewService(cfg Config) *Service {
	s := &Service{
		records:        cfg.Records,
		secrets:        cfg.Secrets,
		newBuildkite:   cfg.Buildkite,
		secretPrefix:   cfg.SecretPrefix,
		webhookBaseURL: strings.TrimRight(cfg.WebhookBaseURL, "/"),
		now:            cfg.Now,
		random:         cfg.Random,
		log:            cfg.Logger,
		leaseWait:      cfg.LeaseWait,
	}
	if s.secretPrefix == "" {
		s.secretPrefix = "kitefix/"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.random == nil {
		s.random = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.leaseWait <= 0 {
		s.leaseWait = DefaultLeaseWait
	}
	return s
}

// Status returns tenant's status record; a tenant that never connected gets
// a not_connected record.
func (s *Service) Status(ctx context.Context, tenant string) (Record, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Record{State: StateNotConnected}.normalized(), err
	}
	rec = rec.normalized()
	s.withLastDelivery(ctx, tenant, &rec)
	return rec, nil
}

// Connect verifies token with Buildkite and, when it passes, stores it and
// makes tenant connected. A token that fails leaves a working connection as
// it was: the failure goes to last_attempt. The returned record is what to
// show; a non-nil error is a *Failure (see AsFailure).
func (s *Service) Connect(ctx context.Context, tenant, token string) (Record, error) {
	token = strings.TrimSpace(token)
	v, f := CheckToken(ctx, token, s.newBuildkite, s.now())
	if f != nil {
		return s.recordFailure(ctx, tenant, v, f)
	}
	return s.withLease(ctx, tenant, func() (Record, error) {
		return s.connectLocked(ctx, tenant, token, v)
	})
}

// connectLocked stores a verified token. Writes, in order: the token, the
// webhook route and secret when the tenant has none, then the record. When
// the record write fails, the earlier writes are undone, so a failed
// re-connect leaves a working connection as it was.
func (s *Service) connectLocked(ctx context.Context, tenant, token string, v Verification) (Record, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	var undo undoList
	abort := func(err error) (Record, error) {
		if uerr := undo.run(ctx); uerr != nil {
			s.log.ErrorContext(ctx, "undo connect failed", "tenant", tenant, "err", uerr)
			return s.failStorage(ctx, tenant, unfinished("connect", errors.Join(err, uerr)))
		}
		return s.failStorage(ctx, tenant, err)
	}

	tokenName := TokenSecretName(s.secretPrefix, tenant)
	restore, err := s.restorer(ctx, tokenName)
	if err != nil {
		return s.failStorage(ctx, tenant, fmt.Errorf("load token: %w", err))
	}
	// A failed put may still have landed: undo it either way.
	undo.add(restore)
	if err := s.secrets.PutSecret(ctx, tokenName, token); err != nil {
		return abort(fmt.Errorf("store token: %w", err))
	}

	hook := rec.Webhook
	if hook == nil {
		id, err := s.randomHex(16)
		if err != nil {
			return abort(err)
		}
		hook = &Webhook{ID: id, URL: s.webhookURL(id)}
	}
	// Put the route even when the record has one: it repairs a route that
	// went missing, and costs one idempotent write.
	err = s.records.PutWebhookRoute(ctx, hook.ID, tenant)
	// A new route is undone if the put may have landed; a conflict means
	// the id is another tenant's, whose route must stay.
	if rec.Webhook == nil && !errors.Is(err, storage.ErrConflict) {
		undo.add(func(ctx context.Context) error { return s.records.DeleteWebhookRoute(ctx, hook.ID) })
	}
	if err != nil {
		return abort(fmt.Errorf("store webhook route: %w", err))
	}
	newSecret, err := s.ensureWebhookSecret(ctx, tenant, &undo)
	if err != nil {
		return abort(err)
	}

	next := rec
	next.Webhook = hook
	next.applyVerification(v, s.now())
	saved, err := s.save(ctx, next)
	if err != nil {
		return abort(err)
	}
	if newSecret != "" {
		saved.Webhook.Secret = newSecret
	}
	s.log.InfoContext(ctx, "connected", "tenant", tenant, "token_uuid", v.Token.UUID, "organizations", len(v.Organizations))
	return saved, nil
}

// ensureWebhookSecret makes the tenant's webhook secret when none is
// stored, and returns it ("" when one was there already).
func (s *Service) ensureWebhookSecret(ctx context.Context, tenant string, undo *undoList) (string, error) {
	name := WebhookSecretName(s.secretPrefix, tenant)
	_, err := s.secrets.GetSecret(ctx, name)
	switch {
	case err == nil:
		return "", nil
	case !errors.Is(err, storage.ErrNotFound):
		return "", fmt.Errorf("load webhook secret: %w", err)
	}
	secret, err := s.newWebhookSecret()
	if err != nil {
		return "", err
	}
	undo.add(func(ctx context.Context) error { return s.secrets.DeleteSecret(ctx, name) })
	if err := s.secrets.PutSecret(ctx, name, WebhookKeys{Current: secret}.Encode()); err != nil {
		return "", fmt.Errorf("store webhook secret: %w", err)
	}
	return secret, nil
}

// Verify checks the stored token again. A token Buildkite now rejects, or
// that lost scopes or organization access, moves the connection to failed;
// a transient failure (rate limit, Buildkite unreachable) only goes to
// last_attempt.
func (s *Service) Verify(ctx context.Context, tenant string) (Record, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	if !verifiable(rec.State) {
		return rec.normalized(), notConnected()
	}
	tokenName := TokenSecretName(s.secretPrefix, tenant)
	token, err := s.secrets.GetSecret(ctx, tokenName)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return s.failStorage(ctx, tenant, fmt.Errorf("load token: %w", err))
	}
	var (
		v Verification
		f *Failure
	)
	if err != nil {
		f = fail(CodeInvalidToken, "No token is stored for this connection. Connect again with an API access token.", err)
	} else {
		v, f = verifyToken(ctx, s.newBuildkite(token), s.now())
	}

	return s.withLease(ctx, tenant, func() (Record, error) {
		rec, err := s.load(ctx, tenant)
		if err != nil {
			return s.failStorage(ctx, tenant, err)
		}
		if !verifiable(rec.State) {
			return rec.normalized(), notConnected()
		}
		// The outcome is about the token read above: if another request
		// replaced or deleted it since, the outcome says nothing.
		current, err := s.secrets.GetSecret(ctx, tokenName)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return s.failStorage(ctx, tenant, fmt.Errorf("load token: %w", err))
		}
		if current != token {
			return rec.normalized(), conflict(nil)
		}
		switch {
		case f == nil:
			rec.applyVerification(v, s.now())
			saved, err := s.save(ctx, rec)
			if err != nil {
				return s.failStorage(ctx, tenant, err)
			}
			return saved, nil
		case transient(f.Code):
			return s.noteAttempt(ctx, rec, f)
		default:
			return s.markFailed(ctx, rec, v, f)
		}
	})
}

func verifiable(st State) bool { return st == StateConnected || st == StateFailed }

// Disconnect deletes tenant's stored secrets and webhook route and leaves
// the record disconnected. It is idempotent: after a failure, calling it
// again finishes the job.
func (s *Service) Disconnect(ctx context.Context, tenant string) (Record, error) {
	return s.withLease(ctx, tenant, func() (Record, error) {
		rec, err := s.load(ctx, tenant)
		if err != nil {
			return s.failStorage(ctx, tenant, err)
		}
		// Delete what the record points to before the record: a record
		// written first would lose the webhook id of the route to delete.
		for _, name := range []string{TokenSecretName(s.secretPrefix, tenant), WebhookSecretName(s.secretPrefix, tenant)} {
			if err := s.secrets.DeleteSecret(ctx, name); err != nil {
				return s.failStorage(ctx, tenant, unfinished("disconnect", fmt.Errorf("delete secret: %w", err)))
			}
		}
		if rec.Webhook != nil {
			if err := s.records.DeleteWebhookRoute(ctx, rec.Webhook.ID); err != nil {
				return s.failStorage(ctx, tenant, unfinished("disconnect", fmt.Errorf("delete webhook route: %w", err)))
			}
		}
		if e, ok := s.records.(deliveryLogEraser); ok {
			if err := e.ForgetLastDelivery(ctx, tenant); err != nil {
				return s.failStorage(ctx, tenant, unfinished("disconnect", fmt.Errorf("forget last delivery: %w", err)))
			}
		}
		next := Record{Tenant: rec.Tenant, Version: rec.Version, State: StateDisconnected}
		saved, err := s.save(ctx, next)
		if err != nil {
			if !errors.Is(err, storage.ErrConflict) {
				err = unfinished("disconnect", err)
			}
			return s.failStorage(ctx, tenant, err)
		}
		s.log.InfoContext(ctx, "disconnected", "tenant", tenant)
		return saved, nil
	})
}

// RotateWebhookSecret replaces the secret that signs tenant's webhooks and
// returns the record with the new secret, shown this once. The secret it
// replaces keeps verifying for RotationGrace. A rotation within
// RotateCooldown of the last one answers conflict.
func (s *Service) RotateWebhookSecret(ctx context.Context, tenant string) (Record, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	if rec.State != StateConnected || rec.Webhook == nil {
		return rec.normalized(), notConnected()
	}
	// Refuse a rotation in the cooldown before waiting for the lease: in
	// a burst of rotations, all but the first end here.
	if stored, err := s.secrets.GetSecret(ctx, WebhookSecretName(s.secretPrefix, tenant)); err == nil {
		if keys, err := ParseWebhookKeys(stored); err == nil && s.inCooldown(keys) {
			return rec.normalized(), rotatedMomentsAgo()
		}
	}
	return s.withLease(ctx, tenant, func() (Record, error) {
		rec, err := s.load(ctx, tenant)
		if err != nil {
			return s.failStorage(ctx, tenant, err)
		}
		if rec.State != StateConnected || rec.Webhook == nil {
			return rec.normalized(), notConnected()
		}
		name := WebhookSecretName(s.secretPrefix, tenant)
		stored, err := s.secrets.GetSecret(ctx, name)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return s.failStorage(ctx, tenant, fmt.Errorf("load webhook secret: %w", err))
		}
		now := s.now().UTC()
		var keys WebhookKeys
		if err == nil {
			if keys, err = ParseWebhookKeys(stored); err != nil {
				// Nothing verifies with a value that does not parse:
				// replace it whole.
				s.log.WarnContext(ctx, "stored webhook secret unreadable; replacing it", "tenant", tenant, "err", err)
				keys = WebhookKeys{}
			}
		}
		if s.inCooldown(keys) {
			return rec.normalized(), rotatedMomentsAgo()
		}
		secret, err := s.newWebhookSecret()
		if err != nil {
			return s.failStorage(ctx, tenant, err)
		}
		next := WebhookKeys{Current: secret}
		if keys.Current != "" {
			next = keys.Rotated(secret, now)
		}
		if err := s.secrets.PutSecret(ctx, name, next.Encode()); err != nil {
			err = fmt.Errorf("store webhook secret: %w", err)
			// The put may have landed: put the old value back so the
			// secrets out there are the ones that verify.
			var uerr error
			if stored != "" {
				uerr = s.secrets.PutSecret(context.WithoutCancel(ctx), name, stored)
			} else {
				uerr = s.secrets.DeleteSecret(context.WithoutCancel(ctx), name)
			}
			if uerr != nil {
				return s.failStorage(ctx, tenant, unfinished("rotation", errors.Join(err, uerr)))
			}
			return s.failStorage(ctx, tenant, err)
		}
		s.log.InfoContext(ctx, "webhook secret rotated", "tenant", tenant)
		rec = rec.normalized()
		rec.Webhook.Secret = secret
		return rec, nil
	})
}

// inCooldown reports whether keys were rotated less than RotateCooldown ago.
func (s *Service) inCooldown(keys WebhookKeys) bool {
	return keys.Previous != "" && s.now().Before(keys.PreviousUntil.Add(-RotationGrace+RotateCooldown))
}

func rotatedMomentsAgo() *Failure {
	return fail(CodeConflict, fmt.Sprintf(
		"The webhook secret was rotated moments ago by another request; nothing was changed by this one. Use the secret that request returned, or rotate again in %d seconds.",
		int(RotateCooldown.Seconds())), nil)
}

func notConnected() *Failure {
	return fail(CodeNotConnected, "Buildkite is not connected: connect with an API access token first.", nil)
}

// transient reports whether a failure says nothing about the token itself.
func transient(c Code) bool {
	return c == CodeRateLimited || c == CodeUnreachable || c == CodeStorageUnavailable
}

// withLease runs change while holding tenant's lease, waiting up to
// leaseWait for it; a lease still busy then answers conflict.
func (s *Service) withLease(ctx context.Context, tenant string, change func() (Record, error)) (Record, error) {
	holder, err := s.randomHex(16)
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	if err := s.takeLease(ctx, tenant, holder); err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	defer func() {
		// Release even when the request was cancelled: the lease would
		// otherwise block the tenant until it expires.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.records.ReleaseLease(rctx, tenant, holder); err != nil {
			s.log.WarnContext(ctx, "release lease failed; it expires on its own", "tenant", tenant, "err", err)
		}
	}()
	return change()
}

// takeLease takes tenant's lease for holder, polling while another holder
// has it.
func (s *Service) takeLease(ctx context.Context, tenant, holder string) error {
	// Wall time, not s.now: the wait is real even under a fixed test clock.
	deadline := time.Now().Add(s.leaseWait)
	pause := leasePollMin
	for {
		now := s.now()
		err := s.records.TakeLease(ctx, tenant, holder, now, now.Add(LeaseTTL))
		if err == nil {
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("take lease: %w", err)
		}
		if time.Now().Add(pause).After(deadline) {
			return busy(err)
		}
		// Jitter spreads the waiters' attempts.
		d := pause/2 + mrand.N(pause/2+1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("take lease: %w: %w", storage.ErrUnavailable, ctx.Err())
		case <-time.After(d):
		}
		pause = min(2*pause, leasePollMax)
	}
}

// undoList holds the steps that undo a change's earlier writes, run last
// first.
type undoList []func(context.Context) error

func (u *undoList) add(step func(context.Context) error) { *u = append(*u, step) }

func (u undoList) run(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(u) - 1; i >= 0; i-- {
		if err := u[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// restorer returns a step that puts secret name back as it is now: its
// value, or deleted when there is none.
func (s *Service) restorer(ctx context.Context, name string) (func(context.Context) error, error) {
	old, err := s.secrets.GetSecret(ctx, name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return func(ctx context.Context) error { return s.secrets.DeleteSecret(ctx, name) }, nil
	case err != nil:
		return nil, err
	}
	return func(ctx context.Context) error { return s.secrets.PutSecret(ctx, name, old) }, nil
}

// load returns tenant's record, or a fresh not_connected one.
func (s *Service) load(ctx context.Context, tenant string) (Record, error) {
	rec, err := s.records.GetConnection(ctx, tenant)
	if errors.Is(err, storage.ErrNotFound) {
		return Record{Tenant: tenant, State: StateNotConnected}, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("load connection: %w", err)
	}
	rec.Tenant = tenant
	if rec.Webhook != nil && s.webhookBaseURL != "" {
		// The URL follows where webhooks are received now (a new tunnel,
		// another port), not where they were when the webhook was made.
		w := *rec.Webhook
		w.URL = s.webhookURL(w.ID)
		rec.Webhook = &w
	}
	return rec, nil
}

// webhookURL is where Buildkite sends the webhook named id.
func (s *Service) webhookURL(id string) string { return s.webhookBaseURL + "/hooks/" + id }

// save writes rec conditionally on its version and returns it as stored
// (normalized, with the next version). Under the lease, a lost race means
// the lease expired and another holder wrote: storage.ErrConflict.
func (s *Service) save(ctx context.Context, rec Record) (Record, error) {
	rec.UpdatedAt = s.now().UTC()
	stored := rec
	if stored.Webhook != nil {
		w := *stored.Webhook
		w.Secret = ""
		stored.Webhook = &w
	}
	if err := s.records.PutConnection(ctx, stored); err != nil {
		return Record{}, fmt.Errorf("save connection: %w", err)
	}
	stored.Version++
	return stored.normalized(), nil
}

// recordFailure records a failed connect: a working connection keeps its
// state and notes the attempt; any other becomes failed.
func (s *Service) recordFailure(ctx context.Context, tenant string, v Verification, f *Failure) (Record, error) {
	if f.Code == CodeMalformedRequest {
		rec, err := s.Status(ctx, tenant)
		if err != nil {
			return rec, AsFailure(err)
		}
		return rec, f
	}
	return s.withLease(ctx, tenant, func() (Record, error) {
		rec, err := s.load(ctx, tenant)
		if err != nil {
			return s.failStorage(ctx, tenant, err)
		}
		if rec.State == StateConnected {
			return s.noteAttempt(ctx, rec, f)
		}
		return s.markFailed(ctx, rec, v, f)
	})
}

// noteAttempt records f in rec's last_attempt and leaves the state as it
// is. It runs under the lease.
func (s *Service) noteAttempt(ctx context.Context, rec Record, f *Failure) (Record, error) {
	s.log.WarnContext(ctx, "attempt failed", "tenant", rec.Tenant, "code", string(f.Code), "err", f.Err)
	rec.LastAttempt = &Attempt{At: s.now().UTC(), Error: f.apiError()}
	saved, err := s.save(ctx, rec)
	if err != nil {
		return s.failStorage(ctx, rec.Tenant, err)
	}
	return saved, f
}

// markFailed moves rec to failed with f. It runs under the lease.
func (s *Service) markFailed(ctx context.Context, rec Record, v Verification, f *Failure) (Record, error) {
	s.log.WarnContext(ctx, "connection failed", "tenant", rec.Tenant, "code", string(f.Code), "err", f.Err)
	now := s.now().UTC()
	rec.State = StateFailed
	rec.Error = f.apiError()
	rec.LastAttempt = &Attempt{At: now, Error: f.apiError()}
	rec.MissingScopes = f.MissingScopes
	rec.Capabilities = Capabilities{}
	if v.Token.UUID != "" {
		t := v.Token
		rec.Token = &t
		rec.OptionalScopesMissing = v.OptionalScopesMissing
	}
	saved, err := s.save(ctx, rec)
	if err != nil {
		return s.failStorage(ctx, rec.Tenant, err)
	}
	return saved, f
}

// failStorage reports a storage failure (or a lost race) with the record as
// it is now, when it can still be read.
func (s *Service) failStorage(ctx context.Context, tenant string, err error) (Record, error) {
	f := AsFailure(err)
	if f.Code == CodeConflict {
		s.log.WarnContext(ctx, "connection change conflicted", "tenant", tenant, "code", string(f.Code), "err", err)
	} else {
		s.log.ErrorContext(ctx, "connection storage failed", "tenant", tenant, "code", string(f.Code), "err", err)
	}
	rec, lerr := s.load(ctx, tenant)
	if lerr != nil {
		rec = Record{State: StateNotConnected}
	}
	return rec.normalized(), f
}

func (s *Service) newWebhookSecret() (string, error) { return s.randomHex(32) }

func (s *Service) randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.random, b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// applyVerification makes rec connected with what v found.
func (rec *Record) applyVerification(v Verification, now time.Time) {
	t := v.Token
	now = now.UTC()
	rec.State = StateConnected
	rec.Token = &t
	rec.Organizations = v.Organizations
	rec.MissingScopes = nil
	rec.OptionalScopesMissing = v.OptionalScopesMissing
	rec.Capabilities = v.Capabilities
	rec.VerifiedAt = &now
	rec.Error = nil
	rec.LastAttempt = nil
}

// normalized fills the record's lists so the JSON shows [] rather than null.
func (rec Record) normalized() Record {
	if rec.State == "" {
		rec.State = StateNotConnected
	}
	if rec.Organizations == nil {
		rec.Organizations = []Organization{}
	}
	if rec.MissingScopes == nil {
		rec.MissingScopes = []string{}
	}
	if rec.OptionalScopesMissing == nil {
		rec.OptionalScopesMissing = []string{}
	}
	if rec.Webhook != nil {
		w := *rec.Webhook
		w.withSettings()
		rec.Webhook = &w
	}
	return rec
}
