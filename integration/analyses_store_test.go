package integration

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/connection/conntest"
	"github.com/kitefix/kitefix/shared/dynamostore"
)

// TestAnalysisStoreOnKumo runs the analysis store and budget contracts
// over the DynamoDB adapters on kumo.
func TestAnalysisStoreOnKumo(t *testing.T) {
	k := startKumo(t)
	analysistest.RunStore(t, func(t *testing.T) analysis.Store { return dynamostore.NewAnalyses(k.DynamoDB, k.Table) })
	analysistest.RunBudget(t, dynamostore.NewBudget(k.DynamoDB, k.Table))
	checkTenants(t, k.DynamoDB, k.Table)
}

// TestAnalysisStoreOnMoto runs the same contracts on moto's server, a
// second DynamoDB stand-in, so that neither emulator's quirk passes for a
// feature.
func TestAnalysisStoreOnMoto(t *testing.T) {
	m := startMoto(t)
	analysistest.RunStore(t, func(t *testing.T) analysis.Store { return dynamostore.NewAnalyses(m.DynamoDB, m.Table) })
	analysistest.RunBudget(t, dynamostore.NewBudget(m.DynamoDB, m.Table))
	checkTenants(t, m.DynamoDB, m.Table)
}

// checkTenants lists the tenants with a status record: the tenant list the
// status record's write keeps, which the reconcile pass reads.
func checkTenants(t *testing.T, client *dynamodb.Client, table string) {
	t.Helper()
	ctx := context.Background()
	tenant := uniqueName("tenant")
	if err := dynamostore.New(client, table).PutConnection(ctx, conntest.FullRecord(tenant)); err != nil {
		t.Fatal(err)
	}
	got, err := dynamostore.NewAnalyses(client, table).Tenants(ctx)
	if err != nil {
		t.Fatalf("tenants: %v", err)
	}
	if diff := cmp.Diff([]string{tenant}, got); diff != "" {
		t.Errorf("tenants (-want +got):\n%s", diff)
	}
}
