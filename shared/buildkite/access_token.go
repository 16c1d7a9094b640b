package buildkite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// AccessToken describes the token a Client uses (GET /v2/access-token).
type AccessToken struct {
	UUID        string
	Description string
	Scopes      []string
	CreatedAt   time.Time
	// ExpiresAt is nil for a token that never expires.
	ExpiresAt *time.Time
	User      User
}

// User is the person a token belongs to.
type User struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type accessTokenJSON struct {
	UUID        string     `json:"uuid"`
	Description string     `json:"description"`
	Scopes      []string   `json:"scopes"`
	CreatedAt   *timestamp `json:"created_at"`
	ExpiresAt   *timestamp `json:"expires_at"`
	User        *User      `json:"user"`
}

// UnmarshalJSON decodes Buildkite's payload, in either of its time formats.
func (a *AccessToken) UnmarshalJSON(b []byte) error {
	var w accessTokenJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = AccessToken{
		UUID:        w.UUID,
		Description: w.Description,
		Scopes:      w.Scopes,
		CreatedAt:   w.CreatedAt.value(),
		ExpiresAt:   w.ExpiresAt.ptr(),
	}
	if w.User != nil {
		a.User = *w.User
	}
	return nil
}

var _ json.Unmarshaler = (*AccessToken)(nil)

// AccessToken fetches what Buildkite knows of the client's token: its scopes,
// owner and expiry. It needs no scope.
func (c *Client) AccessToken(ctx context.Context) (AccessToken, error) {
	r, err := c.newRequest(http.MethodGet, "/v2/access-token", nil)
	if err != nil {
		return AccessToken{}, fmt.Errorf("fetch access token: %w", err)
	}
	var at AccessToken
	if _, err := c.doJSON(ctx, r, &at); err != nil {
		return AccessToken{}, fmt.Errorf("fetch access token: %w", err)
	}
	return at, nil
}
