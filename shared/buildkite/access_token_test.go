package buildkite

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAccessToken(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		want    AccessToken
	}{
		{
			name:    "never expires",
			fixture: "access_token.json",
			want: AccessToken{
				UUID:        "b63254c0-3271-4a98-8270-7cfbd6c2f14e",
				Description: "Development Token",
				Scopes:      []string{"read_builds", "read_build_logs", "read_organizations", "read_pipelines", "write_builds"},
				CreatedAt:   mustTime(t, "2025-07-16T06:07:42Z"),
				User:        User{Name: "Algernon Moncrieff", Email: "algernon.m@buildkite.com"},
			},
		},
		{
			name:    "expiring",
			fixture: "access_token_expiring.json",
			want: AccessToken{
				UUID:        "7d0d4a0c-1f6e-4d0b-9f5a-2a3c1b0e9f11",
				Description: "CI bot, 30 days",
				Scopes:      []string{"read_builds"},
				CreatedAt:   mustTime(t, "2025-07-23T06:07:42.123Z"),
				ExpiresAt:   timePtr(mustTime(t, "2025-08-22T06:07:42Z")),
				User:        User{Name: "CI Bot", Email: "ci@example.com"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, map[string]http.HandlerFunc{
				"GET /v2/access-token": func(w http.ResponseWriter, r *http.Request) {
					if got := r.Header.Get("Accept"); got != "application/json" {
						t.Errorf("Accept = %q, want application/json", got)
					}
					serveFixture(t, http.StatusOK, tt.fixture)(w, r)
				},
			})
			got, err := newTestClient(srv, newFakeClock()).AccessToken(context.Background())
			if err != nil {
				t.Fatalf("AccessToken: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("AccessToken mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
