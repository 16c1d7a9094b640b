// Package dynamostore keeps connection status records and webhook routes in
// a single DynamoDB table.
//
// Table layout (key schema pk S HASH, sk S RANGE; TTL attribute "ttl"):
//
//	pk=TENANT#<tenant>  sk=CONNECTION#buildkite  the status record, as native attributes
//	pk=TENANT#<tenant>  sk=LEASE                 holder, until (unix ms), ttl: the tenant's lease
//	pk=WEBHOOK#<id>     sk=ROUTE                 tenant: the tenant the webhook id belongs to
//
// Secrets never go into the table: a record's Webhook.Secret is dropped on
// write, only the webhook id and URL are kept.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/storage"
)

// Key attribute names and fixed sort keys of the table.
const (
	AttrPK  = "pk"
	AttrSK  = "sk"
	AttrTTL = "ttl"

	connectionSK = "CONNECTION#buildkite"
	leaseSK      = "LEASE"
	routeSK      = "ROUTE"
)

// leaseItemLife is how long a lease item stays in the table after it
// expired, should its holder never release it: DynamoDB's TTL sweep then
// removes it. Expired leases are overtaken long before.
const leaseItemLife = time.Hour

// API is the part of the DynamoDB client the Store uses.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store implements connection.Records on a DynamoDB table.
type Store struct {
	client API
	table  string
}

var _ connection.Records = (*Store)(nil)

// New returns a Store on the table named table (the TABLE_NAME variable).
func New(client API, table string) *Store {
	return &Store{client: client, table: table}
}

func tenantPK(tenant string) string { return "TENANT#" + tenant }
func webhookPK(id string) string    { return "WEBHOOK#" + id }
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: pk},
		AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// GetConnection returns the tenant's record, or storage.ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, tenant string) (connection.Record, error) {
	if tenant == "" {
		return connection.Record{}, errors.New("get connection: empty tenant")
	}
	var it connectionItem
	err := getItem(ctx, s.client, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(tenantPK(tenant), connectionSK),
		ConsistentRead: aws.Bool(true),
	}, "get connection", &it)
	if err != nil {
		return connection.Record{}, err
	}
	return it.record(), nil
}

// getItem reads the item in and decodes it into v; a missing item is
// storage.ErrNotFound. op names the read in errors.
func getItem(ctx context.Context, client API, in *dynamodb.GetItemInput, op string, v any) error {
	out, err := client.GetItem(ctx, in)
	if err != nil {
		return classify(op, err)
	}
	if len(out.Item) == 0 {
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	}
	if err := attributevalue.UnmarshalMap(out.Item, v); err != nil {
		return fmt.Errorf("%s: decode item: %w", op, err)
	}
	return nil
}

// PutConnection writes rec if the stored version equals rec.Version (0: no
// record yet) and stores version rec.Version+1. A lost race returns
// storage.ErrConflict. Webhook.Secret is never written.
func (s *Store) PutConnection(ctx context.Context, rec connection.Record) error {
	if rec.Tenant == "" {
		return errors.New("put connection: empty tenant")
	}
	if rec.Version < 0 {
		return fmt.Errorf("put connection: negative version %d", rec.Version)
	}
	it := newConnectionItem(rec)
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("put connection: encode item: %w", err)
	}
	in := &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item:      item,
	}
	// Expression attribute names must not be prefixes of one another (a
	// kumo limitation); "#ver" is the only one here.
	if rec.Version == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(" + AttrPK + ")")
	} else {
		in.ConditionExpression = aws.String("#ver = :ver")
		in.ExpressionAttributeNames = map[string]string{"#ver": "version"}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":ver": &types.AttributeValueMemberN{Value: strconv.FormatInt(rec.Version, 10)},
		}
	}
	// The record and its entry in the tenant list (which the reconcile
	// pass reads with one Query instead of scanning the table) are written
	// together; a record written before the list existed enters it at its
	// next write.
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{
				TableName: in.TableName, Item: in.Item, ConditionExpression: in.ConditionExpression,
				ExpressionAttributeNames: in.ExpressionAttributeNames, ExpressionAttributeValues: in.ExpressionAttributeValues,
			}},
			{Put: &types.Put{TableName: in.TableName, Item: tenantListItem(rec.Tenant)}},
		},
	})
	if err != nil {
		return classifyTx("put connection", err)
	}
	return nil
}

// tenantListPK is the partition of the tenant list: one item per tenant
// that ever had a connection record, keyed TENANT#<id>.
const tenantListPK = "TENANTS"

func tenantListItem(tenant string) map[string]types.AttributeValue {
	it := key(tenantListPK, tenantPK(tenant))
	it["tenant"] = &types.AttributeValueMemberS{Value: tenant}
	return it
}

// PutWebhookRoute maps webhookID to tenant. Putting the same mapping again
// is fine; mapping an id that belongs to another tenant returns
// storage.ErrConflict.
func (s *Store) PutWebhookRoute(ctx context.Context, webhookID, tenant string) error {
	if webhookID == "" || tenant == "" {
		return errors.New("put webhook route: empty webhook id or tenant")
	}
	item, err := attributevalue.MarshalMap(routeItem{PK: webhookPK(webhookID), SK: routeSK, Tenant: tenant})
	if err != nil {
		return fmt.Errorf("put webhook route: encode item: %w", err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(" + AttrPK + ") OR #tn = :tn"),
		ExpressionAttributeNames: map[string]string{"#tn": "tenant"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":tn": &types.AttributeValueMemberS{Value: tenant},
		},
	})
	if err != nil {
		return classify("put webhook route", err)
	}
	return nil
}

// WebhookTenant returns the tenant of webhookID, or storage.ErrNotFound.
func (s *Store) WebhookTenant(ctx context.Context, webhookID string) (string, error) {
	if webhookID == "" {
		return "", fmt.Errorf("get webhook route: %w", storage.ErrNotFound)
	}
	var it routeItem
	err := getItem(ctx, s.client, &dynamodb.GetItemInput{
		TableName: aws.String(s.table),
		Key:       key(webhookPK(webhookID), routeSK),
	}, "get webhook route", &it)
	if err != nil {
		return "", err
	}
	if it.Tenant == "" {
		return "", fmt.Errorf("get webhook route: %w", storage.ErrNotFound)
	}
	return it.Tenant, nil
}

// DeleteWebhookRoute removes the route of webhookID; a missing one is fine.
func (s *Store) DeleteWebhookRoute(ctx context.Context, webhookID string) error {
	if webhookID == "" {
		return nil
	}
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table),
		Key:       key(webhookPK(webhookID), routeSK),
	})
	if err != nil {
		return classify("delete webhook route", err)
	}
	return nil
}

// TakeLease makes holder the owner of tenant's lease until until, when it
// is free, expired at now, or holder's already; otherwise it returns
// storage.ErrConflict. One conditional put decides.
func (s *Store) TakeLease(ctx context.Context, tenant, holder string, now, until time.Time) error {
	if tenant == "" || holder == "" {
		return errors.New("take lease: empty tenant or holder")
	}
	item, err := attributevalue.MarshalMap(leaseItem{
		PK:     tenantPK(tenant),
		SK:     leaseSK,
		Holder: holder,
		Until:  until.UnixMilli(),
		TTL:    until.Add(leaseItemLife).Unix(),
	})
	if err != nil {
		return fmt.Errorf("take lease: encode item: %w", err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(" + AttrPK + ") OR #until < :now OR #holder = :holder"),
		ExpressionAttributeNames: map[string]string{"#until": "until", "#holder": "holder"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":    &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":holder": &types.AttributeValueMemberS{Value: holder},
		},
	})
	if err != nil {
		return classify("take lease", err)
	}
	return nil
}

// ReleaseLease deletes tenant's lease item if holder owns it; a lease
// another holder took over is left alone.
func (s *Store) ReleaseLease(ctx context.Context, tenant, holder string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(tenantPK(tenant), leaseSK),
		ConditionExpression:      aws.String("#holder = :holder"),
		ExpressionAttributeNames: map[string]string{"#holder": "holder"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":holder": &types.AttributeValueMemberS{Value: holder},
		},
	})
	if err != nil {
		if err = classify("release lease", err); errors.Is(err, storage.ErrConflict) {
			return nil
		}
		return err
	}
	return nil
}

// classify maps a DynamoDB call's error to the storage errors. Service
// errors are matched on their code (kumo does not return typed errors).
// SDK error messages do not carry item values, and the items hold no
// secrets anyway.
func classify(op string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ConditionalCheckFailedException" {
		return fmt.Errorf("%s: %w", op, storage.ErrConflict)
	}
	return fmt.Errorf("%s: %w: %w", op, storage.ErrUnavailable, err)
}
