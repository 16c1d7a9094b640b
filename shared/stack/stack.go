// Package stack assembles kitefix's parts for where they run: AWS clients
// and adapters for the Lambda functions, embedded storage for
// `kitefix serve`. It holds wiring only; the logic lives in the packages it
// wires.
package stack

import (
	"log/slog"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/connection"
)

// BuildkiteClients returns the factory of per-token Buildkite clients for
// requests a person waits on: a connect makes two calls, and together they
// stay well inside API Gateway's 30-second limit, so a rate limit that asks
// for a long wait is reported at once rather than waited out.
func BuildkiteClients(cfg config.Config, log *slog.Logger) connection.NewBuildkite {
	return func(token string) connection.Buildkite {
		return buildkite.New(token,
			buildkite.WithBaseURL(cfg.BuildkiteAPIURL),
			buildkite.WithTimeout(10*time.Second),
			buildkite.WithMaxRateLimitWait(3*time.Second),
			buildkite.WithLogger(log))
	}
}
