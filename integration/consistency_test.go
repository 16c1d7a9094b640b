package integration

import (
	"context"
	"fmt"

	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kitefix/kitefix/shared/connection/conntest"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/secretstore"
)

// How often each concurrent scenario runs per adapter set: enough to catch
// an interleaving that tears the state, few enough to keep the file under a
// minute. moto serves requests from one Python interpreter, and the 50
// waiters of a burst poll it for the lease: a run there takes about ten
// times as long as on kumo, so it gets fewer runs.
const (
	kumoRuns = 5
	motoRuns = 3
)

// TestConsistencyOnKumo runs the connection lifecycle's concurrent
// scenarios on DynamoDB and Secrets Manager as kumo serves them.
func TestConsistencyOnKumo(t *testing.T) {
	env := startKumo(t)
	conntest.RunConsistency(t, kumoRuns, func(t *testing.T) conntest.Stores {
		return awsStores(env.DynamoDB, env.Secrets, env.Table)
	})
}

// TestConsistencyOnMoto runs the same scenarios on moto's server.
func TestConsistencyOnMoto(t *testing.T) {
	env := startMoto(t)
	conntest.RunConsistency(t, motoRuns, func(t *testing.T) conntest.Stores {
		return awsStores(env.DynamoDB, env.Secrets, env.Table)
	})
}

func awsStores(db *dynamodb.Client, sm *secretsmanager.Client, table string) conntest.Stores {
	return conntest.Stores{
		Records: dynamostore.New(db, table),
		Secrets: secretstore.New(sm),
		Routes: func(ctx context.Context, tenant string) ([]string, error) {
			return scanRoutes(ctx, db, table, tenant)
		},
	}
}

// scanRoutes lists the ids of every webhook route item of tenant. The store
// has no index by tenant (deliveries look routes up by id), so this scans:
// fine for a test table.
func scanRoutes(ctx context.Context, db *dynamodb.Client, table, tenant string) ([]string, error) {
	var ids []string
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, item := range page.Items {
			if str(item["sk"]) == "ROUTE" && str(item["tenant"]) == tenant {
				id := str(item["pk"])
				ids = append(ids, id[len("WEBHOOK#"):])
			}
		}
	}
	return ids, nil
}
