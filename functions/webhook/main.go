// Command webhook is the Lambda function behind the webhook function URL:
// it authenticates Buildkite's deliveries and queues failed work.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/stack"
)

func main() {
	cfg := config.MustLoad("TABLE_NAME", "QUEUE_URL")
	log := cfg.Logger(os.Stderr)
	h, err := stack.AWSWebhook(context.Background(), cfg, log)
	if err != nil {
		log.Error("start the webhook function", "err", err)
		os.Exit(1)
	}
	lambda.Start(h.Lambda)
}
