package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kitefix/kitefix/shared/storage"
)

// Webhook deliveries live beside the tenant's status record:
//
//	pk=TENANT#<tenant>  sk=DELIVERY#<key>         ttl: when the claim lapses (epoch seconds)
//	pk=TENANT#<tenant>  sk=WEBHOOK#last_delivery  at_ns: when the webhook last delivered
//
// The last delivery is an item of its own, not part of the versioned
// status record, so noting it never races a settings change.
const (
	deliverySKPrefix = "DELIVERY#"
	lastDeliverySK   = "WEBHOOK#last_delivery"
)

// deliveryItem is tenant's claim on name, lapsing (and deleted by TTL) at
// expires.
func deliveryItem(tenant, name string, expires time.Time) map[string]types.AttributeValue {
	item := key(tenantPK(tenant), deliverySKPrefix+name)
	item[AttrTTL] = &types.AttributeValueMemberN{Value: strconv.FormatInt(expires.Unix(), 10)}
	return item
}

// ClaimDelivery records that tenant's work named name is queued, until
// expires (also the item's TTL). It returns storage.ErrConflict when an
// unexpired claim exists. DynamoDB deletes expired items only eventually,
// so an item whose ttl has passed counts as absent.
func (s *Store) ClaimDelivery(ctx context.Context, tenant, name string, expires time.Time) error {
	if tenant == "" || name == "" {
		return errors.New("claim delivery: empty tenant or key")
	}
	item := deliveryItem(tenant, name, expires)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item:      item,
		// One expression attribute name: kumo resolves names that prefix
		// one another wrongly.
		ConditionExpression:      aws.String("attribute_not_exists(" + AttrPK + ") OR #ttl < :now"),
		ExpressionAttributeNames: map[string]string{"#ttl": AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Unix(), 10)},
		},
	})
	if err != nil {
		return classify("claim delivery", err)
	}
	return nil
}

// ConfirmDelivery sets the expiry (and TTL) of tenant's claim on name to
// expires, once its work is queued. It is a plain put: it writes the claim
// when none is there, since the work is queued either way, and it needs no
// permission beyond the claim's own.
func (s *Store) ConfirmDelivery(ctx context.Context, tenant, name string, expires time.Time) error {
	if tenant == "" || name == "" {
		return errors.New("confirm delivery: empty tenant or key")
	}
	item := deliveryItem(tenant, name, expires)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item:      item,
	})
	if err != nil {
		return classify("confirm delivery", err)
	}
	return nil
}

// ReleaseDelivery removes a claim, so the work can be queued again; a
// missing claim is fine.
func (s *Store) ReleaseDelivery(ctx context.Context, tenant, name string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table),
		Key:       key(tenantPK(tenant), deliverySKPrefix+name),
	})
	if err != nil {
		return classify("release delivery", err)
	}
	return nil
}

// HasDelivery reports whether an unexpired claim exists for tenant's key.
func (s *Store) HasDelivery(ctx context.Context, tenant, name string) (bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(tenantPK(tenant), deliverySKPrefix+name),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, classify("get delivery", err)
	}
	ttl, ok := out.Item[AttrTTL].(*types.AttributeValueMemberN)
	if !ok {
		return false, nil
	}
	sec, err := strconv.ParseInt(ttl.Value, 10, 64)
	if err != nil {
		return false, fmt.Errorf("get delivery: decode ttl: %w", err)
	}
	return time.Now().Unix() < sec, nil
}

// NoteDelivery records that tenant's webhook delivered at at. An earlier
// time than the one stored changes nothing.
func (s *Store) NoteDelivery(ctx context.Context, tenant string, at time.Time) error {
	if tenant == "" {
		return errors.New("note delivery: empty tenant")
	}
	ns := &types.AttributeValueMemberN{Value: strconv.FormatInt(at.UnixNano(), 10)}
	item := key(tenantPK(tenant), lastDeliverySK)
	item["at_ns"] = ns
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(" + AttrPK + ") OR #at < :at"),
		ExpressionAttributeNames:  map[string]string{"#at": "at_ns"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": ns},
	})
	if err != nil {
		if err = classify("note delivery", err); errors.Is(err, storage.ErrConflict) {
			return nil // a later delivery is already noted
		}
		return err
	}
	return nil
}

// ForgetLastDelivery removes the note of tenant's last delivery; a missing
// one is fine.
func (s *Store) ForgetLastDelivery(ctx context.Context, tenant string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table),
		Key:       key(tenantPK(tenant), lastDeliverySK),
	})
	if err != nil {
		return classify("forget last delivery", err)
	}
	return nil
}

// LastDelivery returns when tenant's webhook last delivered, or the zero
// time when it never did.
func (s *Store) LastDelivery(ctx context.Context, tenant string) (time.Time, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table),
		Key:       key(tenantPK(tenant), lastDeliverySK),
	})
	if err != nil {
		return time.Time{}, classify("get last delivery", err)
	}
	v, ok := out.Item["at_ns"].(*types.AttributeValueMemberN)
	if !ok {
		return time.Time{}, nil
	}
	ns, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("get last delivery: decode time: %w", err)
	}
	return time.Unix(0, ns).UTC(), nil
}
