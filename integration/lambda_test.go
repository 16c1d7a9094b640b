package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/secretstore"
	"github.com/kitefix/kitefix/shared/storage"
)

// The values the sample events carry (see events/).
const (
	sampleTenant = "tenant-example"
	sampleToken  = "bkua_0000000000000000000000000000000000000000"
	wrongToken   = "bkct_0000000000000000000000000000000000000000"
)

// webhookBaseURL is what the connect function is told its webhook URLs
// start with.
const webhookBaseURL = "https://hooks.example.com"

// functionEnv is the environment of a kitefix function under the emulator
// (the environment table in ARCHITECTURE.md), against kumo and the Buildkite API at buildkiteURL.
func functionEnv(t *testing.T, name string, k *kumoEnv, queueURL, secretPrefix, buildkiteURL string) map[string]string {
	t.Helper()
	env := rieEnv(t, name)
	for key, v := range map[string]string{
		"TABLE_NAME":                       k.Table,
		"QUEUE_URL":                        queueURL,
		"SECRET_PREFIX":                    secretPrefix,
		"WEBHOOK_BASE_URL":                 webhookBaseURL,
		"BUILDKITE_API_URL":                buildkiteURL,
		"TENANT_CLAIM":                     "tenant_id",
		"AUTO_RETRY":                       "true",
		"AWS_ENDPOINT_URL_DYNAMODB":        k.URL,
		"AWS_ENDPOINT_URL_SQS":             k.URL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": k.URL,
	} {
		env[key] = v
	}
	return env
}

// settingsResponse is one answer of the connect function: the HTTP API
// response and its body, the status record.
type settingsResponse struct {
	status int
	header map[string]string
	body   string
	record connection.Record
}

// callSettings invokes the connect function with eventFile and decodes the
// HTTP API response and the status record in its body.
func callSettings(t *testing.T, fn *lambdaFunction, eventFile string) settingsResponse {
	t.Helper()
	raw := fn.invoke(t, eventFile)
	var resp events.APIGatewayV2HTTPResponse
	if err := decodeStrict(raw, &resp); err != nil {
		t.Fatalf("%s: result is not an HTTP API response: %v", eventFile, err)
	}
	body := resp.Body
	if resp.IsBase64Encoded {
		t.Fatalf("%s: base64 response body; want JSON", eventFile)
	}
	r := settingsResponse{status: resp.StatusCode, header: resp.Headers, body: body}
	if err := json.Unmarshal([]byte(body), &r.record); err != nil {
		t.Fatalf("%s: status %d, body is not a status record: %v", eventFile, resp.StatusCode, err)
	}
	return r
}

// errorCode is the code of the record's error, or "".
func (r settingsResponse) errorCode() connection.Code {
	if r.record.Error == nil {
		return ""
	}
	return r.record.Error.Code
}

// TestConnectFunction runs the connect bootstrap under the Lambda Runtime
// Interface Emulator, against kumo and a fake Buildkite, through a
// tenant's whole connection lifecycle with the sample events.
func TestConnectFunction(t *testing.T) {
	ctx := context.Background()
	k := startKumo(t)
	bk := bkfake.New(t)
	bk.Add(sampleToken, bkfake.Token{
		Scopes: append(slices.Clone(connection.RequiredScopes), "write_builds"),
		Orgs:   []string{"acme"},
	})
	prefix := uniqueName("kitefix") + "/"
	fn := startFunction(t, "connect", functionEnv(t, "connect", k, "", prefix, bk.URL))

	var bodies []string
	call := func(eventFile string) settingsResponse {
		t.Helper()
		r := callSettings(t, fn, eventFile)
		bodies = append(bodies, r.body)
		if ct := r.header["Content-Type"]; !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q, want application/json", eventFile, ct)
		}
		return r
	}

	// Not connected yet.
	r := call("connect-get.json")
	if r.status != http.StatusOK || r.record.State != connection.StateNotConnected {
		t.Fatalf("connect-get before connecting = %d %s, want 200 not_connected", r.status, r.record.State)
	}

	// Connect.
	r = call("connect-put.json")
	if r.status != http.StatusOK || r.record.State != connection.StateConnected {
		t.Fatalf("connect-put = %d %s (%v), want 200 connected", r.status, r.record.State, r.record.Error)
	}
	if r.record.Token == nil || r.record.Token.UUID == "" {
		t.Errorf("connect-put: no token uuid")
	}
	var slugs []string
	for _, o := range r.record.Organizations {
		slugs = append(slugs, o.Slug)
	}
	if diff := cmp.Diff([]string{"acme"}, slugs); diff != "" {
		t.Errorf("connect-put organizations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(connection.Capabilities{Annotate: true, Retry: true}, r.record.Capabilities); diff != "" {
		t.Errorf("connect-put capabilities (-want +got):\n%s", diff)
	}
	if len(r.record.MissingScopes) != 0 || len(r.record.OptionalScopesMissing) != 0 {
		t.Errorf("connect-put: missing scopes %v, optional %v; want none", r.record.MissingScopes, r.record.OptionalScopesMissing)
	}
	if r.record.Webhook == nil || !strings.HasPrefix(r.record.Webhook.URL, webhookBaseURL+"/hooks/") || len(r.record.Webhook.URL) == len(webhookBaseURL+"/hooks/") {
		t.Fatalf("connect-put webhook = %+v, want a URL under %s/hooks/", r.record.Webhook, webhookBaseURL)
	}
	if r.record.Webhook.Secret == "" {
		t.Fatalf("connect-put: no webhook secret; it is shown once, when made")
	}
	hookURL, firstSecret := r.record.Webhook.URL, r.record.Webhook.Secret

	// The token went to Secrets Manager.
	secrets := secretstore.New(k.Secrets)
	if stored, err := secrets.GetSecret(ctx, connection.TokenSecretName(prefix, sampleTenant)); err != nil || stored != sampleToken {
		t.Errorf("token secret after connecting: unreadable or not the token (err %v)", err)
	}

	// The status record no longer shows the secret.
	r = call("connect-get.json")
	if r.status != http.StatusOK || r.record.State != connection.StateConnected {
		t.Errorf("connect-get = %d %s, want 200 connected", r.status, r.record.State)
	}
	if r.record.Webhook == nil || r.record.Webhook.URL != hookURL || r.record.Webhook.Secret != "" {
		t.Errorf("connect-get webhook = %+v, want URL %s and no secret", r.record.Webhook, hookURL)
	}

	// A cluster token is refused and leaves the connection as it was.
	r = call("connect-put-wrong-token-type.json")
	if r.status != http.StatusUnprocessableEntity || r.errorCode() != connection.CodeWrongTokenType {
		t.Errorf("connect-put-wrong-token-type = %d %q, want 422 wrong_token_type", r.status, r.errorCode())
	}
	if r.record.State != connection.StateConnected {
		t.Errorf("connect-put-wrong-token-type: state %s, want connected", r.record.State)
	}
	if r.record.LastAttempt == nil || r.record.LastAttempt.At.IsZero() {
		t.Errorf("connect-put-wrong-token-type: no last_attempt")
	} else if la := r.record.LastAttempt.Error; la == nil || la.Code != connection.CodeWrongTokenType {
		t.Errorf("connect-put-wrong-token-type: last_attempt.error = %+v, want wrong_token_type", la)
	}

	r = call("connect-put-malformed.json")
	if r.status != http.StatusBadRequest || r.errorCode() != connection.CodeMalformedRequest {
		t.Errorf("connect-put-malformed = %d %q, want 400 malformed_request", r.status, r.errorCode())
	}

	r = call("connect-no-tenant.json")
	if r.status != http.StatusUnauthorized || r.errorCode() != connection.CodeUnauthorized {
		t.Errorf("connect-no-tenant = %d %q, want 401 unauthorized", r.status, r.errorCode())
	}

	r = call("connect-verify.json")
	if r.status != http.StatusOK || r.record.State != connection.StateConnected || r.record.VerifiedAt == nil {
		t.Errorf("connect-verify = %d %s verified_at %v, want 200 connected with verified_at", r.status, r.record.State, r.record.VerifiedAt)
	}

	r = call("connect-rotate-webhook-secret.json")
	if r.status != http.StatusOK || r.record.Webhook == nil {
		t.Fatalf("connect-rotate-webhook-secret = %d %+v, want 200 with the webhook", r.status, r.record.Webhook)
	}
	if s := r.record.Webhook.Secret; s == "" || s == firstSecret {
		t.Errorf("connect-rotate-webhook-secret: the secret is empty or unchanged")
	}
	secondSecret := r.record.Webhook.Secret

	// Nothing secret is kept in the table.
	out, err := k.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(k.Table)})
	if err != nil {
		t.Fatalf("scan the table: %v", err)
	}
	items, err := json.Marshal(out.Items)
	if err != nil {
		t.Fatalf("encode the items: %v", err)
	}
	for _, s := range []string{sampleToken, firstSecret, secondSecret} {
		if strings.Contains(string(items), s) {
			t.Errorf("a secret is stored in DynamoDB")
		}
	}

	r = call("connect-delete.json")
	if r.status != http.StatusOK || r.record.State != connection.StateDisconnected {
		t.Errorf("connect-delete = %d %s, want 200 disconnected", r.status, r.record.State)
	}
	for _, name := range []string{connection.TokenSecretName(prefix, sampleTenant), connection.WebhookSecretName(prefix, sampleTenant)} {
		if _, err := secrets.GetSecret(ctx, name); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("secret %s after disconnecting: %v, want not found", name, err)
		}
	}

	for i, b := range bodies {
		if strings.Contains(b, sampleToken) || strings.Contains(b, wrongToken) {
			t.Errorf("response %d contains a token", i)
		}
	}
	logs := fn.output.String()
	if !strings.Contains(logs, `"msg":"connected"`) {
		t.Errorf("the function logged no connect; its output is not what this check reads")
	}
	for _, s := range []string{sampleToken, wrongToken, firstSecret, secondSecret} {
		if strings.Contains(logs, s) {
			t.Errorf("the function's log output contains a token or webhook secret")
		}
	}
	for _, call := range bk.Calls() {
		if !strings.HasPrefix(call, "GET /v2/access-token") && !strings.HasPrefix(call, "GET /v2/organizations") {
			t.Errorf("unexpected Buildkite call %s", call)
		}
	}
}

// webhookEvents are the sample webhook deliveries.
var webhookEvents = []string{
	"webhook-ping.json",
	"webhook-job-finished-failed.json",
	"webhook-build-finished-failed.json",
	"webhook-bad-signature.json",
}

// TestWebhookFunction runs the webhook bootstrap under the emulator and
// sends it every sample delivery: each gets an HTTP answer.
func TestWebhookFunction(t *testing.T) {
	k := startKumo(t)
	bk := bkfake.New(t)
	queue := createQueue(t, k, false)
	fn := startFunction(t, "webhook", functionEnv(t, "webhook", k, queue, uniqueName("kitefix")+"/", bk.URL))

	for _, file := range webhookEvents {
		raw := fn.invoke(t, file)
		var resp events.LambdaFunctionURLResponse
		if err := decodeStrict(raw, &resp); err != nil {
			t.Errorf("%s: result is not a function URL response: %v", file, err)
			continue
		}
		if resp.StatusCode < 100 || resp.StatusCode > 599 {
			t.Errorf("%s: status %d, want an HTTP status", file, resp.StatusCode)
		}
		if strings.Contains(resp.Body, webhookTestSecret) {
			t.Errorf("%s: the response contains the webhook secret", file)
		}
	}
}

// TestAnalyzeFunction runs the analyze bootstrap under the emulator with a
// queue batch and the scheduled reconcile event.
func TestAnalyzeFunction(t *testing.T) {
	k := startKumo(t)
	bk := bkfake.New(t)
	queue := createQueue(t, k, false)
	fn := startFunction(t, "analyze", functionEnv(t, "analyze", k, queue, uniqueName("kitefix")+"/", bk.URL))

	var batch events.SQSEvent
	b, err := os.ReadFile(filepath.Join(eventsDir, "analyze-sqs.json"))
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	if err := json.Unmarshal(b, &batch); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	var ids []string
	for _, m := range batch.Records {
		ids = append(ids, m.MessageId)
	}

	raw := fn.invoke(t, "analyze-sqs.json")
	var resp events.SQSEventResponse
	if err := decodeStrict(raw, &resp); err != nil {
		t.Fatalf("analyze-sqs.json: result is not a batch response: %v", err)
	}
	for _, f := range resp.BatchItemFailures {
		if !slices.Contains(ids, f.ItemIdentifier) {
			t.Errorf("batch item failure %q is no message of the batch %v", f.ItemIdentifier, ids)
		}
	}

	fn.invoke(t, "analyze-schedule.json")
}
