package integration

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// eventsDir holds the sample events, one per function and case.
const eventsDir = "../events"

// sampleEvents are the files events/ must hold, and what each decodes into.
var sampleEvents = map[string]func() any{
	"connect-put.json":                   func() any { return new(events.APIGatewayV2HTTPRequest) },
	"connect-get.json":                   func() any { return new(events.APIGatewayV2HTTPRequest) },
	"connect-verify.json":                func() any { return new(events.APIGatewayV2HTTPRequest) },
	"connect-delete.json":                func() any { return new(events.APIGatewayV2HTTPRequest) },
	"connect-rotate-webhook-secret.json": func() any { return new(events.APIGatewayV2HTTPRequest) },
	"connect-put-malformed.json":         func() any { return new(events.APIGatewayV2HTTPRequest) },
	"connect-put-wrong-token-type.json":  func() any { return new(events.APIGatewayV2HTTPRequest) },
	"connect-no-tenant.json":             func() any { return new(events.APIGatewayV2HTTPRequest) },
	"connect-analyses.json":              func() any { return new(events.APIGatewayV2HTTPRequest) },
	"webhook-ping.json":                  func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-job-finished-failed.json":   func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-build-finished-failed.json": func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-bad-signature.json":         func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-job-finished-passed.json":   func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-token.json":                 func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-stale-timestamp.json":       func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-unknown-id.json":            func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-malformed.json":             func() any { return new(events.LambdaFunctionURLRequest) },
	"webhook-missing-event.json":         func() any { return new(events.LambdaFunctionURLRequest) },
	"analyze-sqs.json":                   func() any { return new(events.SQSEvent) },
	"analyze-sqs-build.json":             func() any { return new(events.SQSEvent) },
	"analyze-sqs-poison.json":            func() any { return new(events.SQSEvent) },
	"analyze-schedule.json":              func() any { return new(events.EventBridgeEvent) },
}

// queueMessage is the message the webhook function enqueues for analyze
// (the queue message contract in ARCHITECTURE.md).
type queueMessage struct {
	Kind        string    `json:"kind"`
	TenantID    string    `json:"tenant_id"`
	Org         string    `json:"org"`
	Pipeline    string    `json:"pipeline"`
	BuildNumber int       `json:"build_number"`
	BuildID     string    `json:"build_id"`
	JobID       string    `json:"job_id"`
	Reason      string    `json:"reason"`
	QueuedAt    time.Time `json:"queued_at"`
}

// decodeStrict decodes exactly one JSON value from b into v, refusing
// fields v does not have.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

// readEvent reads events/<name> and decodes it strictly into v.
func readEvent(t *testing.T, name string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	if err := decodeStrict(b, v); err != nil {
		t.Fatalf("%s does not decode into %T: %v", name, v, err)
	}
	return b
}

// generic decodes JSON into plain values, dropping what is zero (null,
// false, 0, "", empty objects and lists), so a file and the re-encoding of
// its typed value compare equal when the type kept everything the file
// says. Encoders add zero-valued fields the type always writes.
func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode JSON: %v", err)
	}
	return pruneZero(v)
}

func pruneZero(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			if e = pruneZero(e); e != nil {
				m[k] = e
			}
		}
		if len(m) == 0 {
			return nil
		}
		return m
	case []any:
		if len(x) == 0 {
			return nil
		}
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = pruneZero(e)
		}
		return s
	case string:
		if x == "" {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	}
	return v
}

func TestSampleEventsAreAllKnown(t *testing.T) {
	entries, err := os.ReadDir(eventsDir)
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if diff := cmp.Diff(sortedKeys(sampleEvents), got); diff != "" {
		t.Errorf("files in events/ (-want +got):\n%s", diff)
	}
}

func TestSampleEventsRoundTrip(t *testing.T) {
	for _, name := range sortedKeys(sampleEvents) {
		t.Run(name, func(t *testing.T) {
			v := sampleEvents[name]()
			in := readEvent(t, name, v)
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("marshal %T: %v", v, err)
			}
			if diff := cmp.Diff(generic(t, in), generic(t, out)); diff != "" {
				t.Errorf("round trip through %T (-file +re-encoded):\n%s", v, diff)
			}
		})
	}
}

// fakeTokenRE matches the clearly fake tokens the samples carry.
var fakeTokenRE = regexp.MustCompile(`^bk[a-z]{2}_0{40}$`)

func TestSampleSettingsAPIEvents(t *testing.T) {
	tests := []struct {
		file   string
		route  string
		tenant bool
		token  string // the token in the body; "" for none
		body   string // "none", "json" or "malformed"
	}{
		{"connect-put.json", "PUT /v1/integrations/buildkite", true, "bkua_", "json"},
		{"connect-get.json", "GET /v1/integrations/buildkite", true, "", "none"},
		{"connect-verify.json", "POST /v1/integrations/buildkite/verify", true, "", "none"},
		{"connect-delete.json", "DELETE /v1/integrations/buildkite", true, "", "none"},
		{"connect-rotate-webhook-secret.json", "POST /v1/integrations/buildkite/webhook-secret", true, "", "none"},
		{"connect-put-malformed.json", "PUT /v1/integrations/buildkite", true, "", "malformed"},
		{"connect-put-wrong-token-type.json", "PUT /v1/integrations/buildkite", true, "bkct_", "json"},
		{"connect-no-tenant.json", "GET /v1/integrations/buildkite", false, "", "none"},
		{"connect-analyses.json", "GET /v1/analyses", true, "", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var ev events.APIGatewayV2HTTPRequest
			readEvent(t, tt.file, &ev)

			method, path, _ := strings.Cut(tt.route, " ")
			got := map[string]string{
				"version":                    ev.Version,
				"routeKey":                   ev.RouteKey,
				"requestContext.routeKey":    ev.RequestContext.RouteKey,
				"rawPath":                    ev.RawPath,
				"requestContext.http.path":   ev.RequestContext.HTTP.Path,
				"requestContext.http.method": ev.RequestContext.HTTP.Method,
			}
			want := map[string]string{
				"version":                    "2.0",
				"routeKey":                   tt.route,
				"requestContext.routeKey":    tt.route,
				"rawPath":                    path,
				"requestContext.http.path":   path,
				"requestContext.http.method": method,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}

			auth := ev.RequestContext.Authorizer
			if auth == nil || auth.JWT == nil || auth.JWT.Claims["sub"] == "" {
				t.Fatalf("no JWT authorizer claims: every route is behind the JWT authorizer")
			}
			tenant, ok := auth.JWT.Claims["tenant_id"]
			if ok != tt.tenant || (ok && tenant == "") {
				t.Errorf("tenant_id claim = %q (present %t), want present %t", tenant, ok, tt.tenant)
			}

			if ev.IsBase64Encoded {
				t.Errorf("isBase64Encoded: the samples keep the body readable")
			}
			switch tt.body {
			case "none":
				if ev.Body != "" {
					t.Errorf("body = %q, want none", ev.Body)
				}
			case "malformed":
				if json.Valid([]byte(ev.Body)) {
					t.Errorf("body %q is valid JSON, want malformed", ev.Body)
				}
			case "json":
				var body struct {
					Token string `json:"token"`
				}
				if err := decodeStrict([]byte(ev.Body), &body); err != nil {
					t.Fatalf("body: %v", err)
				}
				if !strings.HasPrefix(body.Token, tt.token) || !fakeTokenRE.MatchString(body.Token) {
					t.Errorf("token %q: want a clearly fake %s token", body.Token, tt.token)
				}
				if got, want := ev.Headers["content-length"], fmt.Sprint(len(ev.Body)); got != want {
					t.Errorf("content-length = %s, want %s", got, want)
				}
			}
			if tt.body == "malformed" && !strings.Contains(ev.Body, "bkua_") {
				t.Errorf("the malformed body should still look like a token request")
			}
		})
	}

	var ev events.APIGatewayV2HTTPRequest
	readEvent(t, "connect-analyses.json", &ev)
	if ev.RawQueryString != "limit=20" || ev.QueryStringParameters["limit"] != "20" {
		t.Errorf("connect-analyses.json: query %q %v, want limit=20", ev.RawQueryString, ev.QueryStringParameters)
	}
}

// webhookTestSecret signs the webhook samples: the secret of the published
// Buildkite signature test vector.
const webhookTestSecret = "29b1ff5779c76bd48ba6705eb99ff970"

// signatureValid reports whether header signs body with secret (the
// timestamp is not checked: the samples are old by design).
func signatureValid(header, body, secret string) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "timestamp":
			ts = v
		case "signature":
			sig = v
		}
	}
	got, err := hex.DecodeString(sig)
	if ts == "" || err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + body))
	return hmac.Equal(got, mac.Sum(nil))
}

func TestSampleWebhookEvents(t *testing.T) {
	tests := []struct {
		file      string
		event     string
		signed    bool
		wantState map[string]string // "job" or "build" → state in the payload
	}{
		{"webhook-ping.json", "ping", true, nil},
		{"webhook-job-finished-failed.json", "job.finished", true, map[string]string{"job": "failed", "build": "failing"}},
		{"webhook-build-finished-failed.json", "build.finished", true, map[string]string{"build": "failed"}},
		{"webhook-bad-signature.json", "job.finished", false, map[string]string{"job": "failed", "build": "failing"}},
		{"webhook-job-finished-passed.json", "job.finished", true, map[string]string{"job": "passed", "build": "failing"}},
		{"webhook-token.json", "job.finished", false, map[string]string{"job": "failed", "build": "failing"}},
		{"webhook-stale-timestamp.json", "job.finished", true, map[string]string{"job": "failed", "build": "failing"}},
		{"webhook-unknown-id.json", "job.finished", true, map[string]string{"job": "failed", "build": "failing"}},
		{"webhook-malformed.json", "job.finished", true, nil},
		{"webhook-missing-event.json", "", true, map[string]string{"job": "failed", "build": "failing"}},
	}
	hookPath := regexp.MustCompile(`^/hooks/[0-9a-f]{32}$`)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var ev events.LambdaFunctionURLRequest
			readEvent(t, tt.file, &ev)
			if ev.Version != "2.0" || ev.RequestContext.HTTP.Method != "POST" {
				t.Errorf("version %q method %q, want 2.0 POST", ev.Version, ev.RequestContext.HTTP.Method)
			}
			if !hookPath.MatchString(ev.RawPath) || ev.RequestContext.HTTP.Path != ev.RawPath {
				t.Errorf("path %q (http.path %q), want /hooks/<128-bit hex id>", ev.RawPath, ev.RequestContext.HTTP.Path)
			}
			for k := range ev.Headers {
				if k != strings.ToLower(k) {
					t.Errorf("header %q: function URLs lower-case header names", k)
				}
			}
			if got := ev.Headers["x-buildkite-event"]; got != tt.event {
				t.Errorf("x-buildkite-event = %q, want %q", got, tt.event)
			}
			if got, want := ev.Headers["content-length"], fmt.Sprint(len(ev.Body)); got != want {
				t.Errorf("content-length = %s, want %s", got, want)
			}
			if got := signatureValid(ev.Headers["x-buildkite-signature"], ev.Body, webhookTestSecret); got != tt.signed {
				t.Errorf("signature valid = %t, want %t", got, tt.signed)
			}

			var payload struct {
				Event string                       `json:"event"`
				Job   struct{ State, Type string } `json:"job"`
				Build struct {
					State  string `json:"state"`
					Number int    `json:"number"`
				} `json:"build"`
			}
			if tt.file == "webhook-malformed.json" {
				if json.Valid([]byte(ev.Body)) {
					t.Errorf("body is valid JSON, want malformed")
				}
				return
			}
			if err := json.Unmarshal([]byte(ev.Body), &payload); err != nil {
				t.Fatalf("body: %v", err)
			}
			if tt.event == "" {
				tt.event = "job.finished" // the header is missing, not the body's event
			}
			if payload.Event != tt.event {
				t.Errorf("body event = %q, want %q", payload.Event, tt.event)
			}
			got := map[string]string{}
			if payload.Job.State != "" {
				got["job"] = payload.Job.State
			}
			if payload.Build.State != "" {
				got["build"] = payload.Build.State
			}
			if diff := cmp.Diff(tt.wantState, got, cmpEmptyMapIsNil); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	}

	// The ping sample is the published Buildkite signature test vector.
	var ping events.LambdaFunctionURLRequest
	readEvent(t, "webhook-ping.json", &ping)
	const vector = "timestamp=1642080837,signature=582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c"
	if got := ping.Headers["x-buildkite-signature"]; got != vector {
		t.Errorf("webhook-ping.json signature = %q, want the test vector %q", got, vector)
	}
}

// cmpEmptyMapIsNil treats a nil and an empty map alike.
var cmpEmptyMapIsNil = cmp.FilterValues(func(a, b map[string]string) bool {
	return len(a) == 0 && len(b) == 0
}, cmp.Ignore())

func TestSampleAnalyzeEvents(t *testing.T) {
	var batch events.SQSEvent
	readEvent(t, "analyze-sqs.json", &batch)
	if len(batch.Records) == 0 {
		t.Fatalf("analyze-sqs.json has no records")
	}
	reasons := map[string]bool{}
	for i, r := range batch.Records {
		if r.EventSource != "aws:sqs" || r.MessageId == "" {
			t.Errorf("record %d: eventSource %q messageId %q", i, r.EventSource, r.MessageId)
		}
		sum := md5.Sum([]byte(r.Body))
		if got := hex.EncodeToString(sum[:]); r.Md5OfBody != got {
			t.Errorf("record %d: md5OfBody %s, want %s", i, r.Md5OfBody, got)
		}
		var m queueMessage
		if err := decodeStrict([]byte(r.Body), &m); err != nil {
			t.Errorf("record %d: body is not a queue message: %v", i, err)
			continue
		}
		if m.TenantID == "" || m.Org == "" || m.Pipeline == "" || m.BuildNumber <= 0 || m.BuildID == "" || m.JobID == "" || m.QueuedAt.IsZero() {
			t.Errorf("record %d: incomplete queue message %+v", i, m)
		}
		reasons[m.Reason] = true
	}
	if diff := cmp.Diff(map[string]bool{"webhook": true, "reconcile": true}, reasons); diff != "" {
		t.Errorf("message reasons (-want +got):\n%s", diff)
	}

	var sched events.EventBridgeEvent
	readEvent(t, "analyze-schedule.json", &sched)
	got := map[string]string{"source": sched.Source, "detail-type": sched.DetailType}
	want := map[string]string{"source": "aws.events", "detail-type": "Scheduled Event"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("analyze-schedule.json (-want +got):\n%s", diff)
	}
}
