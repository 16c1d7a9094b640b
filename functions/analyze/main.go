// Command analyze is the analyze function: it consumes the queue of failed
// jobs (an SQS batch, answered with a partial batch response) and, invoked
// by the EventBridge schedule, runs the reconcile pass.
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
	h, err := stack.AWSAnalyze(context.Background(), cfg, log)
	if err != nil {
		log.Error("start analyze function", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
