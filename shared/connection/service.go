package connection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/kitefix/kitefix/shared/storage"
)

// Service runs the connection lifecycle for every tenant.
type Service struct {
	records        Records
	secrets        Secrets
	newBuildkite   NewBuildkite
	secretPrefix   string
	webhookBaseURL string
	now            func() time.Time
	random         io.Reader
	log            *slog.Logger
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
}

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
	return s
}

// maxWriteTries bounds the re-reads after a conditional write lost a race.
const maxWriteTries = 3

// Status returns tenant's status record; a tenant that never connected gets
// a not_connected record.
func (s *Service) Status(ctx context.Context, tenant string) (Record, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Record{State: StateNotConnected}.normalized(), err
	}
	return rec.normalized(), nil
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
	// Store the new token before the record says it is connected: a failed
	// secret write changes nothing, and a failed record write leaves a
	// verified token in place of the old one.
	if err := s.secrets.PutSecret(ctx, TokenSecretName(s.secretPrefix, tenant), token); err != nil {
		return s.failStorage(ctx, tenant, fmt.Errorf("store token: %w", err))
	}
	var newSecret string
	rec, err := s.update(ctx, tenant, func(rec *Record) error {
		if rec.Webhook == nil {
			secret, err := s.createWebhook(ctx, tenant, rec)
			if err != nil {
				return err
			}
			newSecret = secret
		}
		rec.applyVerification(v, s.now())
		return nil
	})
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	if newSecret != "" {
		rec.Webhook.Secret = newSecret
	}
	s.log.InfoContext(ctx, "connected", "tenant", tenant, "token_uuid", v.Token.UUID, "organizations", len(v.Organizations))
	return rec.normalized(), nil
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
	if rec.State != StateConnected && rec.State != StateFailed {
		return rec.normalized(), notConnected()
	}
	token, err := s.secrets.GetSecret(ctx, TokenSecretName(s.secretPrefix, tenant))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		f := fail(CodeInvalidToken, "No token is stored for this connection. Connect again with an API access token.", err)
		return s.markFailed(ctx, tenant, Verification{}, f)
	case err != nil:
		return s.failStorage(ctx, tenant, fmt.Errorf("load token: %w", err))
	}
	v, f := verifyToken(ctx, s.newBuildkite(token), s.now())
	if f != nil {
		if transient(f.Code) {
			return s.noteAttempt(ctx, tenant, f)
		}
		return s.markFailed(ctx, tenant, v, f)
	}
	rec, err = s.update(ctx, tenant, func(rec *Record) error {
		rec.applyVerification(v, s.now())
		return nil
	})
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	return rec.normalized(), nil
}

// Disconnect deletes tenant's stored secrets and webhook route and leaves
// the record disconnected. It is idempotent.
func (s *Service) Disconnect(ctx context.Context, tenant string) (Record, error) {
	for _, name := range []string{TokenSecretName(s.secretPrefix, tenant), WebhookSecretName(s.secretPrefix, tenant)} {
		if err := s.secrets.DeleteSecret(ctx, name); err != nil {
			return s.failStorage(ctx, tenant, fmt.Errorf("delete secret: %w", err))
		}
	}
	rec, err := s.update(ctx, tenant, func(rec *Record) error {
		if rec.Webhook != nil {
			if err := s.records.DeleteWebhookRoute(ctx, rec.Webhook.ID); err != nil {
				return fmt.Errorf("delete webhook route: %w", err)
			}
		}
		*rec = Record{Tenant: rec.Tenant, Version: rec.Version, State: StateDisconnected}
		return nil
	})
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	s.log.InfoContext(ctx, "disconnected", "tenant", tenant)
	return rec.normalized(), nil
}

// RotateWebhookSecret replaces the secret that signs tenant's webhooks and
// returns the record with the new secret, shown this once.
func (s *Service) RotateWebhookSecret(ctx context.Context, tenant string) (Record, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	if rec.State != StateConnected || rec.Webhook == nil {
		return rec.normalized(), notConnected()
	}
	secret, err := s.newWebhookSecret()
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	if err := s.secrets.PutSecret(ctx, WebhookSecretName(s.secretPrefix, tenant), secret); err != nil {
		return s.failStorage(ctx, tenant, fmt.Errorf("store webhook secret: %w", err))
	}
	s.log.InfoContext(ctx, "webhook secret rotated", "tenant", tenant)
	rec = rec.normalized()
	rec.Webhook.Secret = secret
	return rec, nil
}

func notConnected() *Failure {
	return fail(CodeNotConnected, "Buildkite is not connected: connect with an API access token first.", nil)
}

// transient reports whether a failure says nothing about the token itself.
func transient(c Code) bool {
	return c == CodeRateLimited || c == CodeUnreachable || c == CodeStorageUnavailable
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
	return rec, nil
}

// update applies change to the latest record and writes it conditionally,
// re-reading when a concurrent write won.
func (s *Service) update(ctx context.Context, tenant string, change func(*Record) error) (Record, error) {
	var err error
	for range maxWriteTries {
		var rec Record
		rec, err = s.load(ctx, tenant)
		if err != nil {
			return Record{}, err
		}
		if err = change(&rec); err != nil {
			return Record{}, err
		}
		rec.UpdatedAt = s.now().UTC()
		stored := rec
		if stored.Webhook != nil {
			w := *stored.Webhook
			w.Secret = ""
			stored.Webhook = &w
		}
		err = s.records.PutConnection(ctx, stored)
		if err == nil {
			rec.Version++
			return rec, nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return Record{}, fmt.Errorf("save connection: %w", err)
		}
	}
	return Record{}, fmt.Errorf("save connection: %w", err)
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
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	if rec.State == StateConnected {
		return s.noteAttempt(ctx, tenant, f)
	}
	return s.markFailed(ctx, tenant, v, f)
}

// noteAttempt records f in last_attempt and leaves the state as it is.
func (s *Service) noteAttempt(ctx context.Context, tenant string, f *Failure) (Record, error) {
	s.log.WarnContext(ctx, "attempt failed", "tenant", tenant, "code", string(f.Code), "err", f.Err)
	rec, err := s.update(ctx, tenant, func(rec *Record) error {
		rec.LastAttempt = &Attempt{At: s.now().UTC(), Error: f.apiError()}
		return nil
	})
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	return rec.normalized(), f
}

// markFailed moves the connection to failed with f.
func (s *Service) markFailed(ctx context.Context, tenant string, v Verification, f *Failure) (Record, error) {
	s.log.WarnContext(ctx, "connection failed", "tenant", tenant, "code", string(f.Code), "err", f.Err)
	rec, err := s.update(ctx, tenant, func(rec *Record) error {
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
		return nil
	})
	if err != nil {
		return s.failStorage(ctx, tenant, err)
	}
	return rec.normalized(), f
}

// failStorage reports a storage failure with the record as it was, when it
// can still be read.
func (s *Service) failStorage(ctx context.Context, tenant string, err error) (Record, error) {
	f := AsFailure(err)
	s.log.ErrorContext(ctx, "connection storage failed", "tenant", tenant, "code", string(f.Code), "err", err)
	rec, lerr := s.load(ctx, tenant)
	if lerr != nil {
		rec = Record{State: StateNotConnected}
	}
	return rec.normalized(), f
}

// createWebhook makes the webhook id, its route and its secret.
func (s *Service) createWebhook(ctx context.Context, tenant string, rec *Record) (string, error) {
	id, err := s.randomHex(16)
	if err != nil {
		return "", err
	}
	secret, err := s.newWebhookSecret()
	if err != nil {
		return "", err
	}
	if err := s.secrets.PutSecret(ctx, WebhookSecretName(s.secretPrefix, tenant), secret); err != nil {
		return "", fmt.Errorf("store webhook secret: %w", err)
	}
	if err := s.records.PutWebhookRoute(ctx, id, tenant); err != nil {
		return "", fmt.Errorf("store webhook route: %w", err)
	}
	rec.Webhook = &Webhook{ID: id, URL: s.webhookBaseURL + "/hooks/" + id}
	return secret, nil
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
		rec.Webhook = &w
	}
	return rec
}
