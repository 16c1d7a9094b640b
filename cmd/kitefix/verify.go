package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/stack"
)

// runVerify implements `kitefix verify [--token-file F] [--json]`: exit 0
// only when the token could connect, 1 when it could not, 2 for bad usage.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tokenFile := fs.String("token-file", "", "read the token from this file (default: $BUILDKITE_API_TOKEN)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "kitefix verify: unexpected arguments; pass the token with --token-file or BUILDKITE_API_TOKEN")
		return 2
	}
	token := getenv("BUILDKITE_API_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "kitefix verify: read token file: %v\n", err)
			return 2
		}
		token = string(b)
	}
	if strings.TrimSpace(token) == "" {
		fmt.Fprintln(stderr, "kitefix verify: no token: set BUILDKITE_API_TOKEN or pass --token-file")
		return 2
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "kitefix verify: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	v, f := connection.CheckToken(ctx, token, stack.BuildkiteClients(cfg, log), time.Now())
	if *asJSON {
		printVerifyJSON(stdout, v, f)
	} else {
		printVerify(stdout, v, f)
	}
	if f != nil {
		return 1
	}
	return 0
}

func printVerify(w io.Writer, v connection.Verification, f *connection.Failure) {
	if v.Token.UUID != "" {
		fmt.Fprintf(w, "token:    %s (%s)\n", v.Token.UUID, v.Token.Description)
		fmt.Fprintf(w, "user:     %s <%s>\n", v.Token.User.Name, v.Token.User.Email)
		fmt.Fprintf(w, "scopes:   %s\n", strings.Join(v.Token.Scopes, " "))
		if len(v.OptionalScopesMissing) > 0 {
			fmt.Fprintf(w, "optional: missing %s (annotate and retry stay off)\n", strings.Join(v.OptionalScopesMissing, " "))
		}
	}
	if f != nil && len(f.MissingScopes) > 0 {
		fmt.Fprintf(w, "missing:  %s\n", strings.Join(f.MissingScopes, " "))
	}
	for _, o := range v.Organizations {
		fmt.Fprintf(w, "org:      %s (%s)\n", o.Slug, o.Name)
	}
	if f != nil {
		fmt.Fprintf(w, "result:   cannot connect: %s\n          %s\n", f.Code, f.Message)
		return
	}
	fmt.Fprintln(w, "result:   ok, this token can connect")
}

func printVerifyJSON(w io.Writer, v connection.Verification, f *connection.Failure) {
	out := struct {
		OK                    bool                      `json:"ok"`
		Token                 *connection.TokenInfo     `json:"token,omitempty"`
		Organizations         []connection.Organization `json:"organizations"`
		MissingScopes         []string                  `json:"missing_scopes"`
		OptionalScopesMissing []string                  `json:"optional_scopes_missing"`
		Capabilities          connection.Capabilities   `json:"capabilities"`
		Error                 *connection.Error         `json:"error,omitempty"`
	}{OK: f == nil, Organizations: v.Organizations, MissingScopes: []string{}, OptionalScopesMissing: v.OptionalScopesMissing, Capabilities: v.Capabilities}
	if v.Token.UUID != "" {
		out.Token = &v.Token
	}
	if out.Organizations == nil {
		out.Organizations = []connection.Organization{}
	}
	if out.OptionalScopesMissing == nil {
		out.OptionalScopesMissing = []string{}
	}
	if f != nil {
		out.Error = &connection.Error{Code: f.Code, Message: f.Message}
		if f.MissingScopes != nil {
			out.MissingScopes = f.MissingScopes
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
