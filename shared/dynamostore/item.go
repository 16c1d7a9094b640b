package dynamostore

import (
	"time"

	"github.com/kitefix/kitefix/shared/connection"
)

// connectionItem is a status record as stored: native attributes, no
// webhook secret.
type connectionItem struct {
	PK                    string             `dynamodbav:"pk"`
	SK                    string             `dynamodbav:"sk"`
	Tenant                string             `dynamodbav:"tenant"`
	State                 string             `dynamodbav:"state"`
	Token                 *tokenItem         `dynamodbav:"token,omitempty"`
	Organizations         []organizationItem `dynamodbav:"organizations"`
	MissingScopes         []string           `dynamodbav:"missing_scopes"`
	OptionalScopesMissing []string           `dynamodbav:"optional_scopes_missing"`
	Capabilities          capabilitiesItem   `dynamodbav:"capabilities"`
	Webhook               *webhookItem       `dynamodbav:"webhook,omitempty"`
	VerifiedAt            *time.Time         `dynamodbav:"verified_at,omitempty"`
	Error                 *errorItem         `dynamodbav:"error,omitempty"`
	LastAttempt           *attemptItem       `dynamodbav:"last_attempt,omitempty"`
	Version               int64              `dynamodbav:"version"`
	UpdatedAt             time.Time          `dynamodbav:"updated_at"`
}

type tokenItem struct {
	UUID        string     `dynamodbav:"uuid"`
	Description string     `dynamodbav:"description"`
	Scopes      []string   `dynamodbav:"scopes"`
	CreatedAt   time.Time  `dynamodbav:"created_at"`
	ExpiresAt   *time.Time `dynamodbav:"expires_at,omitempty"`
	UserName    string     `dynamodbav:"user_name"`
	UserEmail   string     `dynamodbav:"user_email"`
}

type organizationItem struct {
	Slug string `dynamodbav:"slug"`
	Name string `dynamodbav:"name"`
}

type capabilitiesItem struct {
	Annotate bool `dynamodbav:"annotate"`
	Retry    bool `dynamodbav:"retry"`
}

// webhookItem has no secret field on purpose.
type webhookItem struct {
	ID  string `dynamodbav:"id"`
	URL string `dynamodbav:"url"`
}

type errorItem struct {
	Code    string `dynamodbav:"code"`
	Message string `dynamodbav:"message"`
}

type attemptItem struct {
	At    time.Time  `dynamodbav:"at"`
	Error *errorItem `dynamodbav:"error,omitempty"`
}

// routeItem maps a webhook id to its tenant.
type routeItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	Tenant string `dynamodbav:"tenant"`
}

// leaseItem is a tenant's lease. Until is in unix milliseconds (leases last
// seconds); TTL, in unix seconds, lets DynamoDB sweep a lease whose holder
// never released it.
type leaseItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	Holder string `dynamodbav:"holder"`
	Until  int64  `dynamodbav:"until"`
	TTL    int64  `dynamodbav:"ttl"`
}

// newConnectionItem is rec as it is stored: with version rec.Version+1 and
// without the webhook secret. rec is not modified.
func newConnectionItem(rec connection.Record) connectionItem {
	it := connectionItem{
		PK:                    tenantPK(rec.Tenant),
		SK:                    connectionSK,
		Tenant:                rec.Tenant,
		State:                 string(rec.State),
		MissingScopes:         rec.MissingScopes,
		OptionalScopesMissing: rec.OptionalScopesMissing,
		Capabilities:          capabilitiesItem{Annotate: rec.Capabilities.Annotate, Retry: rec.Capabilities.Retry},
		VerifiedAt:            rec.VerifiedAt,
		Error:                 newErrorItem(rec.Error),
		Version:               rec.Version + 1,
		UpdatedAt:             rec.UpdatedAt,
	}
	if t := rec.Token; t != nil {
		it.Token = &tokenItem{
			UUID:        t.UUID,
			Description: t.Description,
			Scopes:      t.Scopes,
			CreatedAt:   t.CreatedAt,
			ExpiresAt:   t.ExpiresAt,
			UserName:    t.User.Name,
			UserEmail:   t.User.Email,
		}
	}
	if rec.Organizations != nil {
		it.Organizations = make([]organizationItem, len(rec.Organizations))
		for i, o := range rec.Organizations {
			it.Organizations[i] = organizationItem{Slug: o.Slug, Name: o.Name}
		}
	}
	if w := rec.Webhook; w != nil {
		it.Webhook = &webhookItem{ID: w.ID, URL: w.URL}
	}
	if a := rec.LastAttempt; a != nil {
		it.LastAttempt = &attemptItem{At: a.At, Error: newErrorItem(a.Error)}
	}
	return it
}

func newErrorItem(e *connection.Error) *errorItem {
	if e == nil {
		return nil
	}
	return &errorItem{Code: string(e.Code), Message: e.Message}
}

// record is the stored item as a connection.Record.
func (it connectionItem) record() connection.Record {
	rec := connection.Record{
		State:                 connection.State(it.State),
		MissingScopes:         it.MissingScopes,
		OptionalScopesMissing: it.OptionalScopesMissing,
		Capabilities:          connection.Capabilities{Annotate: it.Capabilities.Annotate, Retry: it.Capabilities.Retry},
		VerifiedAt:            it.VerifiedAt,
		Error:                 it.Error.error(),
		Tenant:                it.Tenant,
		Version:               it.Version,
		UpdatedAt:             it.UpdatedAt,
	}
	if t := it.Token; t != nil {
		rec.Token = &connection.TokenInfo{
			UUID:        t.UUID,
			Description: t.Description,
			Scopes:      t.Scopes,
			CreatedAt:   t.CreatedAt,
			ExpiresAt:   t.ExpiresAt,
			User:        connection.User{Name: t.UserName, Email: t.UserEmail},
		}
	}
	if it.Organizations != nil {
		rec.Organizations = make([]connection.Organization, len(it.Organizations))
		for i, o := range it.Organizations {
			rec.Organizations[i] = connection.Organization{Slug: o.Slug, Name: o.Name}
		}
	}
	if w := it.Webhook; w != nil {
		rec.Webhook = &connection.Webhook{ID: w.ID, URL: w.URL}
	}
	if a := it.LastAttempt; a != nil {
		rec.LastAttempt = &connection.Attempt{At: a.At, Error: a.Error.error()}
	}
	return rec
}

func (e *errorItem) error() *connection.Error {
	if e == nil {
		return nil
	}
	return &connection.Error{Code: connection.Code(e.Code), Message: e.Message}
}
