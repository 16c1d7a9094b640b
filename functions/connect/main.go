// Command connect is the settings API Lambda function (see ARCHITECTURE.md), behind
// an API Gateway HTTP API with a JWT authorizer.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/settingsapi"
	"github.com/kitefix/kitefix/shared/stack"
)

func main() {
	cfg := config.MustLoad("TABLE_NAME", "WEBHOOK_BASE_URL")
	log := cfg.Logger(os.Stderr)
	h, err := stack.AWSConnect(context.Background(), cfg, log)
	if err != nil {
		log.Error("start connect function", "err", err)
		os.Exit(1)
	}
	lambda.Start(settingsapi.FromAPIGateway(h, cfg.TenantClaim))
}
