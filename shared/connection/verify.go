package connection

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/kitefix/kitefix/shared/buildkite"
)

// Buildkite is what verification asks of Buildkite for one token.
type Buildkite interface {
	AccessToken(ctx context.Context) (buildkite.AccessToken, error)
	Organizations(ctx context.Context) ([]buildkite.Organization, error)
}

// NewBuildkite makes a Buildkite client that authenticates with token.
type NewBuildkite func(token string) Buildkite

// Verification is what a successful check of a token found.
type Verification struct {
	Token                 TokenInfo
	Organizations         []Organization
	OptionalScopesMissing []string
	Capabilities          Capabilities
}

const tokenSettingsURL = "https://buildkite.com/user/api-access-tokens"

// maxTokenLen bounds what we accept as a token before asking Buildkite.
const maxTokenLen = 512

// checkTokenShape rejects what is plainly not an API access token without a
// call to Buildkite.
func checkTokenShape(token string) *Failure {
	switch {
	case token == "":
		return fail(CodeMalformedRequest, `The request needs a "token": paste a Buildkite API access token.`, nil)
	case len(token) > maxTokenLen || strings.ContainsAny(token, " \t\r\n"):
		return fail(CodeMalformedRequest, "That does not look like a Buildkite API access token: it is too long or contains spaces.", nil)
	case strings.IndexFunc(token, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		// No token holds one, and an HTTP header cannot carry most of them.
		return fail(CodeMalformedRequest, "That does not look like a Buildkite API access token: it holds a control or invisible character.", nil)
	}
	if kind, ok := wrongTokenKind(token); ok {
		return fail(CodeWrongTokenType, fmt.Sprintf(
			"That is %s, not an API access token. Create an API access token (it starts with bkua_) at %s.",
			kind, tokenSettingsURL), nil)
	}
	return nil
}

// verifyToken checks token with Buildkite: that it is valid and unexpired,
// has every required scope and reaches at least one organization.
func verifyToken(ctx context.Context, bk Buildkite, now time.Time) (Verification, *Failure) {
	at, err := bk.AccessToken(ctx)
	if err != nil {
		return Verification{}, buildkiteFailure("fetch access token", err)
	}
	info := tokenInfo(at)
	if at.ExpiresAt != nil && !at.ExpiresAt.After(now) {
		return Verification{Token: info}, fail(CodeExpiredToken, fmt.Sprintf(
			"The token expired on %s. Create a new API access token at %s and connect again.",
			at.ExpiresAt.UTC().Format(time.RFC3339), tokenSettingsURL), nil)
	}
	v := Verification{
		Token:                 info,
		OptionalScopesMissing: missingFrom(OptionalScopes, at.Scopes),
		Capabilities:          capabilitiesOf(at.Scopes),
	}
	if missing := missingFrom(RequiredScopes, at.Scopes); len(missing) > 0 {
		f := fail(CodeMissingScopes, fmt.Sprintf(
			"The token lacks %d required scope(s): %s. Edit the token at %s, tick them, and connect again.",
			len(missing), strings.Join(missing, ", "), tokenSettingsURL), nil)
		f.MissingScopes = missing
		return v, f
	}
	orgs, err := bk.Organizations(ctx)
	if err != nil {
		if errors.Is(err, buildkite.ErrForbidden) {
			return v, noOrganizations(err)
		}
		return v, buildkiteFailure("list organizations", err)
	}
	if len(orgs) == 0 {
		return v, noOrganizations(nil)
	}
	for _, o := range orgs {
		v.Organizations = append(v.Organizations, Organization{Slug: o.Slug, Name: o.Name})
	}
	return v, nil
}

func noOrganizations(err error) *Failure {
	return fail(CodeNoOrganizationAccess, fmt.Sprintf(
		"The token reaches no Buildkite organization. Edit the token at %s and grant it access to your organization under Organization Access.",
		tokenSettingsURL), err)
}

func tokenInfo(at buildkite.AccessToken) TokenInfo {
	info := TokenInfo{
		UUID:        at.UUID,
		Description: at.Description,
		Scopes:      append([]string{}, at.Scopes...),
		CreatedAt:   at.CreatedAt.UTC(),
		User:        User{Name: at.User.Name, Email: at.User.Email},
	}
	if at.ExpiresAt != nil {
		t := at.ExpiresAt.UTC()
		info.ExpiresAt = &t
	}
	return info
}

// buildkiteFailure turns a client error into a failure a person can act on.
func buildkiteFailure(what string, err error) *Failure {
	err = fmt.Errorf("%s: %w", what, err)
	var apiErr *buildkite.APIError
	errors.As(err, &apiErr)
	switch {
	case errors.Is(err, buildkite.ErrUnauthorized):
		if apiErr != nil && strings.Contains(strings.ToLower(apiErr.Message), "expired") {
			return fail(CodeExpiredToken, fmt.Sprintf(
				"Buildkite says the token has expired. Create a new API access token at %s and connect again.", tokenSettingsURL), err)
		}
		return fail(CodeInvalidToken, fmt.Sprintf(
			"Buildkite rejected the token: it is wrong, revoked or expired. Check it, or create a new API access token at %s.", tokenSettingsURL), err)
	case errors.Is(err, buildkite.ErrForbidden):
		return fail(CodeInvalidToken, fmt.Sprintf(
			"Buildkite refused the token (403). It may be limited to other IP addresses or lack REST API access; check it at %s.", tokenSettingsURL), err)
	case errors.Is(err, buildkite.ErrRateLimited) && apiErr == nil:
		// Held back here, Buildkite never asked: say whose limit it is.
		return fail(CodeRateLimited, fmt.Sprintf(
			"kitefix keeps each token within Buildkite's limit of %d requests a minute, and this token's share is used up by other requests. Wait a minute and try again.",
			buildkite.DefaultRequestsPerWindow), err)
	case errors.Is(err, buildkite.ErrRateLimited):
		f := fail(CodeRateLimited, "Buildkite is rate limiting this token. Wait a minute and try again.", err)
		f.RetryAfter = apiErr.RetryAfter
		return f
	default:
		return fail(CodeUnreachable, "Buildkite could not be reached or did not answer in time. Nothing was changed; try again in a minute.", err)
	}
}

// CheckToken verifies token with Buildkite without storing anything: the
// same checks Connect makes. It serves `kitefix verify`.
func CheckToken(ctx context.Context, token string, newBuildkite NewBuildkite, now time.Time) (Verification, *Failure) {
	token = strings.TrimSpace(token)
	if f := checkTokenShape(token); f != nil {
		return Verification{}, f
	}
	return verifyToken(ctx, newBuildkite(token), now)
}
