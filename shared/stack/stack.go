// Package stack assembles kitefix's parts for where they run: AWS clients
// and adapters for the Lambda functions, embedded storage for
// `kitefix serve`. It holds wiring only; the logic lives in the packages it
// wires.
package stack

import (
	"log/slog"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/connection"
)

// BuildkiteClients returns the factory of per-token Buildkite clients.
func BuildkiteClients(cfg config.Config, log *slog.Logger) connection.NewBuildkite {
	return func(token string) connection.Buildkite {
		return buildkite.New(token, buildkite.WithBaseURL(cfg.BuildkiteAPIURL), buildkite.WithLogger(log))
	}
}
