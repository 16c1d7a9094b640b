// Command webhook is the Lambda function behind the webhook function URL
// (DESIGN 3.2).
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/ingest"
)

func main() {
	cfg := config.MustLoad()
	lambda.Start(ingest.NotEnabled(cfg.Logger(os.Stderr)))
}
