package stack

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/ingest"
	"github.com/kitefix/kitefix/shared/secretstore"
	"github.com/kitefix/kitefix/shared/settingsapi"
	"github.com/kitefix/kitefix/shared/sqsqueue"
)

// AWSConnect builds the settings API over DynamoDB and Secrets Manager. The
// SDK reads credentials, region and endpoints (AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_SECRETS_MANAGER) from its own environment.
func AWSConnect(ctx context.Context, cfg config.Config, log *slog.Logger) (http.Handler, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	ddb := dynamodb.NewFromConfig(awsCfg)
	svc := connection.NewService(connection.Config{
		Records:        dynamostore.New(ddb, cfg.TableName),
		Secrets:        secretstore.New(secretsmanager.NewFromConfig(awsCfg)),
		Buildkite:      BuildkiteClients(cfg, log),
		SecretPrefix:   cfg.SecretPrefix,
		WebhookBaseURL: cfg.WebhookBaseURL,
		Logger:         log,
	})
	api := settingsapi.New(svc, log)
	api.ServeAnalyses(dynamostore.NewAnalyses(ddb, cfg.TableName))
	return api, nil
}

// AWSWebhook builds the webhook handler over DynamoDB (routes, status
// records, delivery claims), Secrets Manager (webhook keys) and SQS (the
// analyze queue at QUEUE_URL).
func AWSWebhook(ctx context.Context, cfg config.Config, log *slog.Logger) (*ingest.Handler, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	store := dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName)
	return ingest.New(ingest.Config{
		Routes:       store,
		Secrets:      secretstore.New(secretsmanager.NewFromConfig(awsCfg)),
		Deliveries:   store,
		Queue:        sqsqueue.New(sqs.NewFromConfig(awsCfg), cfg.QueueURL),
		SecretPrefix: cfg.SecretPrefix,
		Logger:       log,
	}), nil
}
