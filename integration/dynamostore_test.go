package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sivchari/kumo"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/connection/conntest"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/storage"
)

// TestRecordsContract runs the same behaviours against the DynamoDB store
// (on kumo) and the local store.
func TestRecordsContract(t *testing.T) {
	t.Run("dynamodb", func(t *testing.T) {
		env := startKumo(t)
		conntest.RunRecords(t, func(t *testing.T) connection.Records {
			return dynamostore.New(env.DynamoDB, env.Table)
		})
	})
	t.Run("local", func(t *testing.T) {
		conntest.RunRecords(t, func(t *testing.T) connection.Records {
			s, err := localstore.Open(t.TempDir())
			if err != nil {
				t.Fatalf("open local store: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

// TestDynamoItemLayout checks what lands in the table: the documented keys,
// native attributes, and no webhook secret anywhere.
func TestDynamoItemLayout(t *testing.T) {
	ctx := context.Background()
	env := startKumo(t)
	store := dynamostore.New(env.DynamoDB, env.Table)

	rec := conntest.FullRecord("acme-tenant")
	if err := store.PutConnection(ctx, rec); err != nil {
		t.Fatalf("PutConnection: %v", err)
	}
	if err := store.PutWebhookRoute(ctx, rec.Webhook.ID, rec.Tenant); err != nil {
		t.Fatalf("PutWebhookRoute: %v", err)
	}

	out, err := env.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(env.Table)})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	type itemKey struct{ PK, SK string }
	var gotKeys []itemKey
	for _, item := range out.Items {
		gotKeys = append(gotKeys, itemKey{str(item["pk"]), str(item["sk"])})
		if containsString(item, rec.Webhook.Secret) {
			t.Errorf("item %s/%s holds the webhook secret", str(item["pk"]), str(item["sk"]))
		}
		if _, ok := item["ttl"]; ok {
			t.Errorf("item %s/%s has a ttl; connection records and routes must not expire", str(item["pk"]), str(item["sk"]))
		}
	}
	wantKeys := []itemKey{
		{"TENANT#acme-tenant", "CONNECTION#buildkite"},
		// The tenant list the reconcile pass reads.
		{"TENANTS", "TENANT#acme-tenant"},
		{"WEBHOOK#" + rec.Webhook.ID, "ROUTE"},
	}
	less := func(a, b itemKey) bool { return a.PK < b.PK }
	if diff := cmp.Diff(wantKeys, gotKeys, cmpopts.SortSlices(less)); diff != "" {
		t.Errorf("item keys mismatch (-want +got):\n%s", diff)
	}

	got, err := env.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(env.Table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "TENANT#acme-tenant"},
			"sk": &types.AttributeValueMemberS{Value: "CONNECTION#buildkite"},
		},
	})
	if err != nil {
		t.Fatalf("get item: %v", err)
	}
	checks := map[string]string{"state": "connected", "tenant": "acme-tenant"}
	for attr, want := range checks {
		if g := str(got.Item[attr]); g != want {
			t.Errorf("attribute %s: got %q, want %q", attr, g, want)
		}
	}
	if v, ok := got.Item["version"].(*types.AttributeValueMemberN); !ok || v.Value != "1" {
		t.Errorf("attribute version: got %#v, want N 1", got.Item["version"])
	}
	if _, ok := got.Item["organizations"].(*types.AttributeValueMemberL); !ok {
		t.Errorf("attribute organizations: got %T, want a list", got.Item["organizations"])
	}

	ttl, err := env.DynamoDB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(env.Table)})
	if err != nil {
		t.Fatalf("describe ttl: %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "ttl" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("table ttl: got %+v, want enabled on ttl", d)
	}
}

func str(av types.AttributeValue) string {
	if s, ok := av.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// containsString reports whether any string in item, at any depth, equals s.
func containsString(item map[string]types.AttributeValue, s string) bool {
	var walk func(av types.AttributeValue) bool
	walk = func(av types.AttributeValue) bool {
		switch v := av.(type) {
		case *types.AttributeValueMemberS:
			return v.Value == s
		case *types.AttributeValueMemberSS:
			for _, x := range v.Value {
				if x == s {
					return true
				}
			}
		case *types.AttributeValueMemberL:
			for _, x := range v.Value {
				if walk(x) {
					return true
				}
			}
		case *types.AttributeValueMemberM:
			for _, x := range v.Value {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	for _, av := range item {
		if walk(av) {
			return true
		}
	}
	return false
}

// TestDynamoUnreachable: with the endpoint gone, every call fails at once
// with storage.ErrUnavailable.
func TestDynamoUnreachable(t *testing.T) {
	srv := kumo.NewServer()
	url := srv.URL
	srv.Close()

	client := newKumoDynamoDB(kumoConfig(t), url, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	store := dynamostore.New(client, "kitefix")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	calls := map[string]func() error{
		"GetConnection":      func() error { _, err := store.GetConnection(ctx, "t"); return err },
		"PutConnection":      func() error { return store.PutConnection(ctx, conntest.FullRecord("t")) },
		"PutWebhookRoute":    func() error { return store.PutWebhookRoute(ctx, "id", "t") },
		"WebhookTenant":      func() error { _, err := store.WebhookTenant(ctx, "id"); return err },
		"DeleteWebhookRoute": func() error { return store.DeleteWebhookRoute(ctx, "id") },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s against a closed endpoint: got error %v, want storage.ErrUnavailable", name, err)
		}
	}
}

// TestDynamoMissingTable: a table that does not exist is a service error,
// reported as storage.ErrUnavailable (not as a missing record).
func TestDynamoMissingTable(t *testing.T) {
	env := startKumo(t)
	store := dynamostore.New(env.DynamoDB, uniqueName("no-such-table"))
	_, err := store.GetConnection(context.Background(), "t")
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetConnection on a missing table: got error %v, want storage.ErrUnavailable", err)
	}
}
