package connection

import (
	"slices"
	"strings"
)

// RequiredScopes are the REST API scopes a token must have to connect.
var RequiredScopes = []string{
	"read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs",
	"read_organizations", "read_pipelines", "read_user", "read_suites",
}

// OptionalScopes turn on capabilities: write_builds lets kitefix annotate
// builds and retry jobs.
var OptionalScopes = []string{"write_builds"}

// missingFrom returns the scopes of want that have lacks, in want's order.
func missingFrom(want, have []string) []string {
	missing := []string{}
	for _, s := range want {
		if !slices.Contains(have, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

func capabilitiesOf(scopes []string) Capabilities {
	w := slices.Contains(scopes, "write_builds")
	return Capabilities{Annotate: w, Retry: w}
}

// wrongTokenPrefixes are Buildkite tokens that are not API access tokens.
var wrongTokenPrefixes = map[string]string{
	"bkct_": "a cluster token",
	"bkaa_": "an agent access token",
	"bkaj_": "an agent job token",
}

// wrongTokenKind names the kind of token when it is not an API access token.
func wrongTokenKind(token string) (string, bool) {
	for prefix, kind := range wrongTokenPrefixes {
		if strings.HasPrefix(token, prefix) {
			return kind, true
		}
	}
	return "", false
}
