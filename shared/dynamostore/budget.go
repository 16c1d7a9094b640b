package dynamostore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/storage"
)

// budgetTTL keeps a minute's counter a little longer than its minute, for
// anyone looking at the table; DynamoDB then drops it.
const budgetTTL = time.Hour

// BudgetAPI is the part of the DynamoDB client the Budget uses.
type BudgetAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Budget counts each token's Buildkite requests per minute in one item per
// token digest and minute (pk BUDGET#<key>, sk MINUTE#<unix minute>),
// incremented with a condition, so every function instance draws from the
// same count.
type Budget struct {
	client BudgetAPI
	table  string
}

var _ analysis.Budget = (*Budget)(nil)

// NewBudget returns the budget over table.
func NewBudget(client BudgetAPI, table string) *Budget {
	return &Budget{client: client, table: table}
}

// TakeRequest counts one request in the minute starting at window if fewer
// than limit were counted, and reports whether it did.
func (b *Budget) TakeRequest(ctx context.Context, key string, window time.Time, limit int) (bool, error) {
	_, ok, err := b.TakeRequestCount(ctx, key, window, limit)
	return ok, err
}

// TakeRequestCount is TakeRequest that also returns the minute's count
// once the request is counted (the limit when it was refused), read from
// the same conditional update.
func (b *Budget) TakeRequestCount(ctx context.Context, key string, window time.Time, limit int) (int, bool, error) {
	if key == "" || limit < 1 {
		return 0, false, errors.New("take request: empty key or limit below 1")
	}
	out, err := b.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(b.table),
		Key: map[string]types.AttributeValue{
			AttrPK: &types.AttributeValueMemberS{Value: "BUDGET#" + key},
			AttrSK: &types.AttributeValueMemberS{Value: "MINUTE#" + strconv.FormatInt(window.Unix()/60, 10)},
		},
		UpdateExpression:         aws.String("SET #count = if_not_exists(#count, :zero) + :one, #expiry = :ttl"),
		ConditionExpression:      aws.String("attribute_not_exists(#count) OR #count < :limit"),
		ExpressionAttributeNames: map[string]string{"#count": "count", "#expiry": AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero":  &types.AttributeValueMemberN{Value: "0"},
			":one":   &types.AttributeValueMemberN{Value: "1"},
			":limit": &types.AttributeValueMemberN{Value: strconv.Itoa(limit)},
			":ttl":   &types.AttributeValueMemberN{Value: strconv.FormatInt(window.Add(budgetTTL).Unix(), 10)},
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if err != nil {
		err = classify("take request", err)
		if errors.Is(err, storage.ErrConflict) {
			return limit, false, nil
		}
		return 0, false, err
	}
	count := limit
	if n, ok := out.Attributes["count"].(*types.AttributeValueMemberN); ok {
		if v, err := strconv.Atoi(n.Value); err == nil {
			count = v
		}
	}
	return count, true, nil
}
