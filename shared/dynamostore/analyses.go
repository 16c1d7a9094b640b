package dynamostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/storage"
)

// Items of the analyses, in the tenant's partition:
//
//	AKEY#<key>                       marks the analysis of key ("job:<id>"): list_sk names its item
//	ANALYSIS#<analyzed_at>#<key>     the analysis (data: its JSON), sorted by time for listing
//	BUILD#<build id>                 the report the build's annotation is made from
//	RECONCILE#<org>                  when the last reconcile pass of the organization started
//	PASSED#<pipeline>#<commit>       tests seen passing on a commit
//
// Each carries ttl, so DynamoDB drops it after analysis.Retention.
const (
	analysisKeySK    = "AKEY#"
	analysisSK       = "ANALYSIS#"
	buildReportSK    = "BUILD#"
	reconcileSK      = "RECONCILE#"
	passedTestsSK    = "PASSED#"
	analysisTimeForm = "20060102T150405.000000000Z"
)

// AnalysesAPI is the part of the DynamoDB client the Analyses store uses.
type AnalysesAPI interface {
	API
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Analyses keeps analyses and what the analyze function needs besides
// them in the same table as the status records.
type Analyses struct {
	client AnalysesAPI
	table  string
	now    func() time.Time
}

var _ analysis.Store = (*Analyses)(nil)

// NewAnalyses returns the store over table.
func NewAnalyses(client AnalysesAPI, table string) *Analyses {
	return &Analyses{client: client, table: table, now: time.Now}
}

// storedAnalysis is an analysis as its data attribute holds it: the API
// shape plus the fields the API leaves out.
type storedAnalysis struct {
	analysis.Record
	Tenant   string `json:"tenant_id"`
	Reported bool   `json:"reported"`
}

func analysisListSK(rec analysis.Record) string {
	return analysisSK + rec.AnalyzedAt.UTC().Format(analysisTimeForm) + "#" + rec.Key()
}

func (s *Analyses) ttl() string {
	return strconv.FormatInt(s.now().Add(analysis.Retention).Unix(), 10)
}

func (s *Analyses) analysisItem(rec analysis.Record) (map[string]types.AttributeValue, error) {
	data, err := json.Marshal(storedAnalysis{Record: rec, Tenant: rec.TenantID, Reported: rec.Reported})
	if err != nil {
		return nil, fmt.Errorf("encode analysis: %w", err)
	}
	item := key(tenantPK(rec.TenantID), analysisListSK(rec))
	item["data"] = &types.AttributeValueMemberS{Value: string(data)}
	item[AttrTTL] = &types.AttributeValueMemberN{Value: s.ttl()}
	return item, nil
}

// CreateAnalysis stores rec and its key marker in one transaction, unless
// the marker exists (storage.ErrConflict).
func (s *Analyses) CreateAnalysis(ctx context.Context, rec analysis.Record) error {
	if rec.TenantID == "" || rec.AnalyzedAt.IsZero() {
		return errors.New("create analysis: empty tenant or analysis time")
	}
	item, err := s.analysisItem(rec)
	if err != nil {
		return fmt.Errorf("create analysis: %w", err)
	}
	marker := key(tenantPK(rec.TenantID), analysisKeySK+rec.Key())
	marker["list_sk"] = &types.AttributeValueMemberS{Value: analysisListSK(rec)}
	marker[AttrTTL] = &types.AttributeValueMemberN{Value: s.ttl()}
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(s.table), Item: marker, ConditionExpression: aws.String("attribute_not_exists(" + AttrPK + ")")}},
			{Put: &types.Put{TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(" + AttrPK + ")")}},
		},
	})
	if err != nil {
		return classifyTx("create analysis", err)
	}
	return nil
}

// UpdateAnalysis replaces a stored analysis; a missing one is
// storage.ErrNotFound.
func (s *Analyses) UpdateAnalysis(ctx context.Context, rec analysis.Record) error {
	item, err := s.analysisItem(rec)
	if err != nil {
		return fmt.Errorf("update analysis: %w", err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(s.table),
		Item:                item,
		ConditionExpression: aws.String("attribute_exists(" + AttrPK + ")"),
	})
	if err != nil {
		err = classify("update analysis", err)
		if errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("update analysis: %w", storage.ErrNotFound)
		}
		return err
	}
	return nil
}

// GetAnalysis returns the tenant's analysis of key.
func (s *Analyses) GetAnalysis(ctx context.Context, tenant, akey string) (analysis.Record, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(tenantPK(tenant), analysisKeySK+akey),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return analysis.Record{}, classify("get analysis", err)
	}
	sk, ok := out.Item["list_sk"].(*types.AttributeValueMemberS)
	if !ok {
		return analysis.Record{}, fmt.Errorf("get analysis: %w", storage.ErrNotFound)
	}
	out, err = s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(tenantPK(tenant), sk.Value),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return analysis.Record{}, classify("get analysis", err)
	}
	if len(out.Item) == 0 {
		return analysis.Record{}, fmt.Errorf("get analysis: %w", storage.ErrNotFound)
	}
	return decodeAnalysis(out.Item)
}

func decodeAnalysis(item map[string]types.AttributeValue) (analysis.Record, error) {
	data, ok := item["data"].(*types.AttributeValueMemberS)
	if !ok {
		return analysis.Record{}, errors.New("decode analysis: no data")
	}
	var sa storedAnalysis
	if err := json.Unmarshal([]byte(data.Value), &sa); err != nil {
		return analysis.Record{}, fmt.Errorf("decode analysis: %w", err)
	}
	rec := sa.Record
	rec.TenantID, rec.Reported = sa.Tenant, sa.Reported
	return rec, nil
}

// ListAnalyses returns a page of the tenant's analyses, newest first. The
// cursor is the sort key of the page's last item, tagged with the tenant
// (analysis.EncodeCursor).
func (s *Analyses) ListAnalyses(ctx context.Context, tenant string, limit int, cursor string) ([]analysis.Record, string, error) {
	limit = max(limit, 1)
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": AttrPK, "#sk": AttrSK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     &types.AttributeValueMemberS{Value: tenantPK(tenant)},
			":prefix": &types.AttributeValueMemberS{Value: analysisSK},
		},
		ScanIndexForward: aws.Bool(false),
		// One more than asked tells whether another page follows.
		Limit: aws.Int32(int32(limit + 1)),
	}
	if cursor != "" {
		sk, err := decodeCursor(tenant, cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list analyses: %w", err)
		}
		in.ExclusiveStartKey = key(tenantPK(tenant), sk)
	}
	out, err := s.client.Query(ctx, in)
	if err != nil {
		return nil, "", classify("list analyses", err)
	}
	items := out.Items
	next := ""
	if len(items) > limit {
		items = items[:limit]
		last, _ := items[limit-1][AttrSK].(*types.AttributeValueMemberS)
		if last != nil {
			next = analysis.EncodeCursor(tenant, []byte(last.Value))
		}
	}
	recs := make([]analysis.Record, 0, len(items))
	for _, it := range items {
		rec, err := decodeAnalysis(it)
		if err != nil {
			return nil, "", fmt.Errorf("list analyses: %w", err)
		}
		recs = append(recs, rec)
	}
	return recs, next, nil
}

func decodeCursor(tenant, cursor string) (string, error) {
	b, err := analysis.DecodeCursor(tenant, cursor)
	if err != nil || !strings.HasPrefix(string(b), analysisSK) {
		return "", analysis.ErrBadCursor
	}
	return string(b), nil
}

// reportItem is a build report as stored.
type reportItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Org         string `dynamodbav:"org"`
	Pipeline    string `dynamodbav:"pipeline"`
	BuildNumber int    `dynamodbav:"build_number"`
	Jobs        string `dynamodbav:"jobs"`
	Version     int64  `dynamodbav:"version"`
	TTL         int64  `dynamodbav:"ttl"`
}

// GetBuildReport returns the report of a build.
func (s *Analyses) GetBuildReport(ctx context.Context, tenant, buildID string) (analysis.BuildReport, error) {
	var it reportItem
	err := getItem(ctx, s.client, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(tenantPK(tenant), buildReportSK+buildID),
		ConsistentRead: aws.Bool(true),
	}, "get build report", &it)
	if err != nil {
		return analysis.BuildReport{}, err
	}
	rep := analysis.BuildReport{TenantID: tenant, Org: it.Org, Pipeline: it.Pipeline, BuildNumber: it.BuildNumber, BuildID: buildID, Version: it.Version}
	if err := json.Unmarshal([]byte(it.Jobs), &rep.Jobs); err != nil {
		return analysis.BuildReport{}, fmt.Errorf("get build report: decode jobs: %w", err)
	}
	return rep, nil
}

// PutBuildReport writes rep if the stored version is rep.Version.
func (s *Analyses) PutBuildReport(ctx context.Context, rep analysis.BuildReport) error {
	jobs, err := json.Marshal(rep.Jobs)
	if err != nil {
		return fmt.Errorf("put build report: encode jobs: %w", err)
	}
	item, err := attributevalue.MarshalMap(reportItem{
		PK: tenantPK(rep.TenantID), SK: buildReportSK + rep.BuildID,
		Org: rep.Org, Pipeline: rep.Pipeline, BuildNumber: rep.BuildNumber,
		Jobs: string(jobs), Version: rep.Version + 1, TTL: s.now().Add(analysis.Retention).Unix(),
	})
	if err != nil {
		return fmt.Errorf("put build report: encode item: %w", err)
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}
	if rep.Version == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(" + AttrPK + ")")
	} else {
		in.ConditionExpression = aws.String("#ver = :ver")
		in.ExpressionAttributeNames = map[string]string{"#ver": "version"}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":ver": &types.AttributeValueMemberN{Value: strconv.FormatInt(rep.Version, 10)},
		}
	}
	if _, err := s.client.PutItem(ctx, in); err != nil {
		return classify("put build report", err)
	}
	return nil
}

// ReconcileMark returns when the organization's last pass started.
func (s *Analyses) ReconcileMark(ctx context.Context, tenant, org string) (time.Time, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(tenantPK(tenant), reconcileSK+org),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return time.Time{}, classify("get reconcile mark", err)
	}
	at, ok := out.Item["at"].(*types.AttributeValueMemberS)
	if !ok {
		return time.Time{}, fmt.Errorf("get reconcile mark: %w", storage.ErrNotFound)
	}
	t, err := time.Parse(time.RFC3339Nano, at.Value)
	if err != nil {
		return time.Time{}, fmt.Errorf("get reconcile mark: %w", err)
	}
	return t, nil
}

// SetReconcileMark records when a pass started.
func (s *Analyses) SetReconcileMark(ctx context.Context, tenant, org string, at time.Time) error {
	item := key(tenantPK(tenant), reconcileSK+org)
	item["at"] = &types.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)}
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return classify("put reconcile mark", err)
	}
	return nil
}

func passedKey(tenant, pipeline, commit string) map[string]types.AttributeValue {
	return key(tenantPK(tenant), passedTestsSK+pipeline+"#"+commit)
}

// AddPassedTests adds tests to the commit's set of tests seen passing.
func (s *Analyses) AddPassedTests(ctx context.Context, tenant, pipeline, commit string, tests []string) error {
	if len(tests) == 0 {
		return nil
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      passedKey(tenant, pipeline, commit),
		UpdateExpression:         aws.String("ADD #tests :tests SET #expiry = :ttl"),
		ExpressionAttributeNames: map[string]string{"#tests": "tests", "#expiry": AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":tests": &types.AttributeValueMemberSS{Value: tests},
			":ttl":   &types.AttributeValueMemberN{Value: s.ttl()},
		},
	})
	if err != nil {
		return classify("add passed tests", err)
	}
	return nil
}

// PassedTests returns the tests seen passing on the commit.
func (s *Analyses) PassedTests(ctx context.Context, tenant, pipeline, commit string) ([]string, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table),
		Key:       passedKey(tenant, pipeline, commit),
	})
	if err != nil {
		return nil, classify("get passed tests", err)
	}
	set, _ := out.Item["tests"].(*types.AttributeValueMemberSS)
	if set == nil {
		return nil, nil
	}
	return set.Value, nil
}

// Tenants lists the tenants that have a status record, from the tenant
// list the status records' writes keep (one Query of one partition, not a
// scan of the table, whose analyses grow with every failed job).
func (s *Analyses) Tenants(ctx context.Context) ([]string, error) {
	var tenants []string
	var start map[string]types.AttributeValue
	for {
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                aws.String(s.table),
			KeyConditionExpression:   aws.String("#pk = :pk"),
			ProjectionExpression:     aws.String("#tenant"),
			ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#tenant": "tenant"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: tenantListPK},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, classify("list tenants", err)
		}
		for _, it := range out.Items {
			if t, ok := it["tenant"].(*types.AttributeValueMemberS); ok && t.Value != "" {
				tenants = append(tenants, t.Value)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return tenants, nil
		}
		start = out.LastEvaluatedKey
	}
}

// classifyTx is classify for a transaction: a failed condition in any of
// its items is storage.ErrConflict.
func classifyTx(op string, err error) error {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return fmt.Errorf("%s: %w", op, storage.ErrConflict)
			}
		}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "TransactionCanceledException" &&
		strings.Contains(apiErr.ErrorMessage(), "ConditionalCheckFailed") {
		return fmt.Errorf("%s: %w", op, storage.ErrConflict)
	}
	return classify(op, err)
}
