package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/secretstore"
	"github.com/kitefix/kitefix/shared/settingsapi"
	"github.com/kitefix/kitefix/shared/storage"
)

// TestConnectOnAWSAdapters runs the settings API over the DynamoDB and
// Secrets Manager adapters (on kumo) and shows that a failed re-connect
// leaves a working connection as it was.
func TestConnectOnAWSAdapters(t *testing.T) {
	const (
		good    = "bkua_e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1"
		revoked = "bkua_f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2"
	)
	env := startKumo(t)
	bk := bkfake.New(t)
	bk.Add(good, bkfake.Token{Scopes: append(append([]string{}, connection.RequiredScopes...), "write_builds")})

	prefix := uniqueName("kitefix") + "/"
	tenant := uniqueName("tenant")
	secrets := secretstore.New(env.Secrets)
	svc := connection.NewService(connection.Config{
		Records: dynamostore.New(env.DynamoDB, env.Table),
		Secrets: secrets,
		Buildkite: func(token string) connection.Buildkite {
			return buildkite.New(token, buildkite.WithBaseURL(bk.URL), buildkite.WithLimiter(nil), buildkite.WithMaxRetries(0))
		},
		SecretPrefix:   prefix,
		WebhookBaseURL: "https://hooks.example.com",
	})
	api := settingsapi.New(svc, nil)
	var bodies []string
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, "/v1/integrations/buildkite"+path, strings.NewReader(body))
		req = req.WithContext(settingsapi.WithTenant(req.Context(), tenant))
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		bodies = append(bodies, rec.Body.String())
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return rec.Code, m
	}

	status, body := do(http.MethodPut, "", `{"token":"`+good+`"}`)
	if status != 200 || body["state"] != "connected" {
		t.Fatalf("connect = %d %v", status, body)
	}
	webhookSecret := body["webhook"].(map[string]any)["secret"].(string)

	status, body = do(http.MethodPut, "", `{"token":"`+revoked+`"}`)
	if status != 422 || body["state"] != "connected" || body["last_attempt"] == nil {
		t.Errorf("failed re-connect = %d %v; want 422, still connected, last_attempt set", status, body)
	}
	ctx := context.Background()
	stored, err := secrets.GetSecret(ctx, connection.TokenSecretName(prefix, tenant))
	if err != nil || stored != good {
		t.Errorf("stored token after a failed re-connect: changed or unreadable (%v)", err)
	}
	if status, body = do(http.MethodPost, "/verify", ""); status != 200 || body["state"] != "connected" {
		t.Errorf("verify = %d %v", status, body)
	}

	// Nothing secret is in the table.
	out, err := env.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(env.Table)})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	items, _ := json.Marshal(out.Items)
	if strings.Contains(string(items), good) || strings.Contains(string(items), webhookSecret) {
		t.Error("a secret is stored in DynamoDB")
	}

	if status, body = do(http.MethodDelete, "", ""); status != 200 || body["state"] != "disconnected" {
		t.Errorf("disconnect = %d %v", status, body)
	}
	for _, name := range []string{connection.TokenSecretName(prefix, tenant), connection.WebhookSecretName(prefix, tenant)} {
		if _, err := secrets.GetSecret(ctx, name); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("secret %s after disconnect: %v, want not found", name, err)
		}
	}
	for _, b := range bodies {
		if strings.Contains(b, good) || strings.Contains(b, revoked) {
			t.Error("a token appears in a response")
		}
	}
}

// TestConnectStorageDown shows a DynamoDB outage answers 503 quickly.
func TestConnectStorageDown(t *testing.T) {
	env := startKumo(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	svc := connection.NewService(connection.Config{
		Records: dynamostore.New(newKumoDynamoDB(env.Config, deadURL, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }), env.Table),
		Secrets: secretstore.New(env.Secrets),
		Buildkite: func(token string) connection.Buildkite {
			return buildkite.New(token, buildkite.WithBaseURL(deadURL), buildkite.WithLimiter(nil))
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(settingsapi.WithTenant(ctx, "t1"), http.MethodGet, "/v1/integrations/buildkite", nil)
	rec := httptest.NewRecorder()
	settingsapi.New(svc, nil).ServeHTTP(rec, req)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "storage_unavailable") {
		t.Errorf("status with DynamoDB down = %d %s", rec.Code, rec.Body.String())
	}
}
