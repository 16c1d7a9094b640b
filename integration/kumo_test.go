package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sivchari/kumo"

	"github.com/kitefix/kitefix/shared/dynamostore"
)

// kumoRegion and the static credentials every kumo client uses.
const (
	kumoRegion    = "us-east-1"
	kumoAccessKey = "test"
	kumoSecretKey = "test"
)

// kumoEnv is one in-process kumo server with clients for the services
// kitefix uses and a table made by dynamostore.CreateTable.
//
// kumo gap: every kumo server in one process shares the same service state
// (services register globally at init), so tables, queues and secrets made
// by one test are visible to every other test in the binary, and a second
// server does not start empty. Name what you create with uniqueName, and
// use the Table of your own env.
type kumoEnv struct {
	// URL is the server's base URL: pass it as the endpoint to clients or
	// child processes (AWS_ENDPOINT_URL_DYNAMODB and friends).
	URL string
	// Config is the SDK config the clients were made from (static
	// credentials, region us-east-1).
	Config   aws.Config
	DynamoDB *dynamodb.Client
	SQS      *sqs.Client
	Secrets  *secretsmanager.Client
	// Table is the name of the table, already created; unique to this env.
	Table string
}

// uniqueName is prefix with a random suffix: kumo state is shared by the
// whole test binary (see kumoEnv).
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// startKumo starts a kumo server for the test, makes clients for it and
// creates the table. The server stops when the test ends.
func startKumo(t testing.TB) *kumoEnv {
	t.Helper()
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)

	env := &kumoEnv{URL: srv.URL, Config: kumoConfig(t), Table: uniqueName("kitefix")}
	env.DynamoDB = newKumoDynamoDB(env.Config, srv.URL)
	env.SQS = newKumoSQS(env.Config, srv.URL)
	env.Secrets = newKumoSecrets(env.Config, srv.URL)

	if err := dynamostore.CreateTable(context.Background(), env.DynamoDB, env.Table); err != nil {
		t.Fatalf("create table: %v", err)
	}
	return env
}

// kumoConfig is an SDK config with static credentials in us-east-1. The SDK
// builds its own HTTP client, so AWS_CA_BUNDLE (set on some machines) is
// honoured.
func kumoConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(kumoRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(kumoAccessKey, kumoSecretKey, "")),
	)
	if err != nil {
		t.Fatalf("load aws config: %v", err)
	}
	return cfg
}

// newKumoDynamoDB is a DynamoDB client for the kumo server at url. kumo sends
// no response checksum, so its validation is off. Extra options (say, a
// lower RetryMaxAttempts) apply last.
func newKumoDynamoDB(cfg aws.Config, url string, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(url)
		o.DisableValidateResponseChecksum = true
	}}, opts...)...)
}

// newKumoSQS is an SQS client for the kumo server at url.
func newKumoSQS(cfg aws.Config, url string, opts ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(cfg, append([]func(*sqs.Options){func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(url)
	}}, opts...)...)
}

// newKumoSecrets is a Secrets Manager client for the kumo server at url.
func newKumoSecrets(cfg aws.Config, url string, opts ...func(*secretsmanager.Options)) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(cfg, append([]func(*secretsmanager.Options){func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(url)
	}}, opts...)...)
}
