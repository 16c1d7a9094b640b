// Command analyze is the SQS consumer that analyzes failed jobs' logs
// (DESIGN 1), also invoked on a schedule for the reconcile pass.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/ingest"
)

func main() {
	cfg := config.MustLoad()
	lambda.Start(ingest.Deferred(cfg.Logger(os.Stderr)))
}
