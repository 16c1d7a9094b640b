package dynamostore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/connection/conntest"
	"github.com/kitefix/kitefix/shared/storage"
)

// fakeAPI records the last PutItem and answers every call with err.
type fakeAPI struct {
	put   *dynamodb.PutItemInput
	extra []map[string]types.AttributeValue
	err   error
}

func (f *fakeAPI) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &dynamodb.GetItemOutput{}, nil
}

func (f *fakeAPI) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.put = in
	return &dynamodb.PutItemOutput{}, f.err
}

// TransactWriteItems records its first put as the last PutItem and the
// rest as extra.
func (f *fakeAPI) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	f.extra = nil
	for i, it := range in.TransactItems {
		if p := it.Put; p != nil && i == 0 {
			f.put = &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
				ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues}
		} else if p != nil {
			f.extra = append(f.extra, p.Item)
		}
	}
	return &dynamodb.TransactWriteItemsOutput{}, f.err
}

func (f *fakeAPI) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return &dynamodb.DeleteItemOutput{}, f.err
}

func TestPutConnectionCondition(t *testing.T) {
	tests := []struct {
		name      string
		version   int64
		wantCond  string
		wantNames map[string]string
		wantStore string
	}{
		{"create", 0, "attribute_not_exists(pk)", nil, "1"},
		{"update", 4, "#ver = :ver", map[string]string{"#ver": "version"}, "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{}
			rec := conntest.FullRecord("acme")
			rec.Version = tt.version
			if err := New(f, "tbl").PutConnection(context.Background(), rec); err != nil {
				t.Fatalf("PutConnection: %v", err)
			}
			if got := aws.ToString(f.put.ConditionExpression); got != tt.wantCond {
				t.Errorf("ConditionExpression: got %q, want %q", got, tt.wantCond)
			}
			if diff := cmp.Diff(tt.wantNames, f.put.ExpressionAttributeNames); diff != "" {
				t.Errorf("ExpressionAttributeNames mismatch (-want +got):\n%s", diff)
			}
			if v, ok := f.put.Item["version"].(*types.AttributeValueMemberN); !ok || v.Value != tt.wantStore {
				t.Errorf("stored version: got %#v, want N %s", f.put.Item["version"], tt.wantStore)
			}
			if got := f.put.Item["pk"].(*types.AttributeValueMemberS).Value; got != "TENANT#acme" {
				t.Errorf("pk: got %q, want TENANT#acme", got)
			}
			if strings.Contains(itemStrings(f.put.Item), rec.Webhook.Secret) {
				t.Errorf("PutItem input holds the webhook secret")
			}
			// Written with it: the tenant's entry in the tenant list.
			want := []map[string]types.AttributeValue{{
				"pk": &types.AttributeValueMemberS{Value: "TENANTS"}, "sk": &types.AttributeValueMemberS{Value: "TENANT#acme"},
				"tenant": &types.AttributeValueMemberS{Value: "acme"},
			}}
			if diff := cmp.Diff(want, f.extra, cmp.AllowUnexported(types.AttributeValueMemberS{})); diff != "" {
				t.Errorf("written with the record (-want +got):\n%s", diff)
			}
		})
	}
}

// itemStrings lists the strings of item, at any depth, one a line.
func itemStrings(item map[string]types.AttributeValue) string {
	var b strings.Builder
	var walk func(av types.AttributeValue)
	walk = func(av types.AttributeValue) {
		switch v := av.(type) {
		case *types.AttributeValueMemberS:
			b.WriteString(v.Value + "\n")
		case *types.AttributeValueMemberL:
			for _, x := range v.Value {
				walk(x)
			}
		case *types.AttributeValueMemberM:
			for _, x := range v.Value {
				walk(x)
			}
		}
	}
	for _, av := range item {
		walk(av)
	}
	return b.String()
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"conditional check failed", &types.ConditionalCheckFailedException{Message: aws.String("failed")}, storage.ErrConflict},
		{"conditional check failed, untyped", &smithy.GenericAPIError{Code: "ConditionalCheckFailedException"}, storage.ErrConflict},
		{"throttled", &smithy.GenericAPIError{Code: "ThrottlingException"}, storage.ErrUnavailable},
		{"missing table", &types.ResourceNotFoundException{Message: aws.String("no table")}, storage.ErrUnavailable},
		{"transport", errors.New("dial tcp: connection refused"), storage.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(&fakeAPI{err: tt.err}, "tbl")
			err := s.PutConnection(context.Background(), conntest.FullRecord("acme"))
			if !errors.Is(err, tt.want) {
				t.Errorf("PutConnection: got error %v, want %v", err, tt.want)
			}
			if _, err := s.GetConnection(context.Background(), "acme"); tt.want == storage.ErrUnavailable && !errors.Is(err, tt.want) {
				t.Errorf("GetConnection: got error %v, want %v", err, tt.want)
			}
		})
	}
}
