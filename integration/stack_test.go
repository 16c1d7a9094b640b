package integration

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/ingest"
	"github.com/kitefix/kitefix/shared/settingsapi"
	"github.com/kitefix/kitefix/shared/stack"
	"github.com/kitefix/kitefix/shared/syncbuf"
	"github.com/kitefix/kitefix/shared/webhook"
)

// awsStack is the three functions' handlers, built in this process by the
// same stack constructors their main.go calls, over kumo, with every log
// line they write kept, and a Buildkite made of one fake per tenant.
type awsStack struct {
	k        *kumoEnv
	connect  settingsapi.APIGatewayHandler
	hook     *ingest.Handler
	analyze  func(context.Context, json.RawMessage) (events.SQSEventResponse, error)
	queueURL string
	dlqURL   string
	prefix   string
	logs     *syncbuf.Buffer
	bk       *buildkiteRouter
	// sent holds the body of every queue message the test received.
	mu   sync.Mutex
	sent [][]byte
}

// newAWSStack sets the SDK's environment to kumo (so the test cannot run
// in parallel with others that set it) and builds the handlers.
func newAWSStack(t *testing.T, bk *buildkiteRouter) *awsStack {
	t.Helper()
	return newAWSStackVia(t, bk, startKumo(t), "")
}

// newAWSStackVia is newAWSStack on k with the functions' AWS calls sent to
// endpoint ("" for kumo itself; say, a proxy that injects faults).
func newAWSStackVia(t *testing.T, bk *buildkiteRouter, k *kumoEnv, endpoint string) *awsStack {
	t.Helper()
	if endpoint == "" {
		endpoint = k.URL
	}
	s := &awsStack{k: k, prefix: uniqueName("kitefix") + "/", logs: &syncbuf.Buffer{}, bk: bk}
	s.queueURL, s.dlqURL = makeQueues(t, k)
	none := filepath.Join(t.TempDir(), "none")
	for key, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                kumoAccessKey,
		"AWS_SECRET_ACCESS_KEY":            kumoSecretKey,
		"AWS_REGION":                       kumoRegion,
		"AWS_CONFIG_FILE":                  none,
		"AWS_SHARED_CREDENTIALS_FILE":      none,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_ENDPOINT_URL_DYNAMODB":        endpoint,
		"AWS_ENDPOINT_URL_SQS":             endpoint,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
	} {
		t.Setenv(key, v)
	}
	cfg := config.Config{
		BuildkiteAPIURL: bk.URL, TableName: k.Table, QueueURL: s.queueURL, SecretPrefix: s.prefix,
		WebhookBaseURL: webhookBaseURL, TenantClaim: "tenant_id", AutoRetry: true, LogLevel: slog.LevelDebug,
	}
	log := cfg.Logger(s.logs)
	ctx := context.Background()
	h, err := stack.AWSConnect(ctx, cfg, log)
	if err != nil {
		t.Fatalf("build connect: %v", err)
	}
	s.connect = settingsapi.FromAPIGateway(h, cfg.TenantClaim)
	if s.hook, err = stack.AWSWebhook(ctx, cfg, log); err != nil {
		t.Fatalf("build webhook: %v", err)
	}
	if s.analyze, err = stack.AWSAnalyze(ctx, cfg, log); err != nil {
		t.Fatalf("build analyze: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function logs:\n%s", s.logs.String())
		}
	})
	return s
}

// makeQueues makes the analyze queue (visibility 1 s, so only a delay
// the function sets keeps a returned message hidden for long) and its
// dead-letter queue.
func makeQueues(tb testing.TB, k *kumoEnv) (queueURL, dlqURL string) {
	tb.Helper()
	return makeRedriveQueues(tb, k, "kitefix-analyze", time.Second)
}

// apiResponse is one answer of the settings API.
type apiResponse struct {
	status int
	body   string
	json   map[string]any
}

// call invokes the settings API as API Gateway would for a caller whose
// verified JWT names tenant ("" for no claim).
func (s *awsStack) call(t *testing.T, tenant, method, target, body string, headers map[string]string) apiResponse {
	t.Helper()
	path, query, _ := strings.Cut(target, "?")
	ev := events.APIGatewayV2HTTPRequest{
		RawPath: path, RawQueryString: query, Body: body, Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}},
	}
	for k, v := range headers {
		ev.Headers[k] = v
	}
	if tenant != "" {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"tenant_id": tenant}},
		}
	}
	resp, err := s.connect(context.Background(), ev)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	out := apiResponse{status: resp.StatusCode, body: resp.Body}
	_ = json.Unmarshal([]byte(resp.Body), &out.json)
	return out
}

// webhookOf returns the webhook id and, when the response hands one out,
// the secret of a status record.
func (r apiResponse) webhookOf(t *testing.T) (id, secret string) {
	t.Helper()
	wh, _ := r.json["webhook"].(map[string]any)
	u, _ := wh["url"].(string)
	id = u[strings.LastIndex(u, "/")+1:]
	secret, _ = wh["secret"].(string)
	if id == "" {
		t.Fatalf("no webhook in %s", r.body)
	}
	return id, secret
}

// deliver sends a webhook delivery to the function URL handler, signed with
// secret ("" for no signature).
func (s *awsStack) deliver(t *testing.T, webhookID, secret, event string, body []byte) (int, string) {
	t.Helper()
	headers := map[string]string{"x-buildkite-event": event, "content-type": "application/json"}
	if secret != "" {
		headers["x-buildkite-signature"] = webhook.Sign(secret, time.Now(), body)
	}
	return s.deliverWith(t, webhookID, headers, body)
}

func (s *awsStack) deliverWith(t *testing.T, webhookID string, headers map[string]string, body []byte) (int, string) {
	t.Helper()
	req := events.LambdaFunctionURLRequest{
		RawPath: "/hooks/" + webhookID, Headers: headers, Body: string(body),
		RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: http.MethodPost, Path: "/hooks/" + webhookID}},
	}
	resp, err := s.hook.Lambda(context.Background(), req)
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return resp.StatusCode, resp.Body
}

// receive takes the visible messages of url (at most 10) as an SQS event,
// keeping their bodies.
func (s *awsStack) receive(t *testing.T, url string) events.SQSEvent {
	t.Helper()
	ev := receiveEvent(t, s.k.SQS, url)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ev.Records {
		s.sent = append(s.sent, []byte(m.Body))
	}
	return ev
}

// drain hands the queue's batches to the analyze handler, deleting what it
// did not report as failed, until the queue is empty; it returns the ids
// of messages that went back.
func (s *awsStack) drain(t *testing.T) []string {
	t.Helper()
	back, _ := s.drainWith(context.Background(), t)
	return back
}

// drainWith is drain with ctx as the invocations' context; it also returns
// the receipt handles of the messages that went back.
func (s *awsStack) drainWith(ctx context.Context, t *testing.T) (back, receipts []string) {
	t.Helper()
	for range 30 {
		ev := s.receive(t, s.queueURL)
		if len(ev.Records) == 0 {
			return back, receipts
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.analyze(ctx, payload)
		if err != nil {
			t.Fatalf("analyze: %v", err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
			back = append(back, f.ItemIdentifier)
		}
		for _, m := range ev.Records {
			if failed[m.MessageId] {
				receipts = append(receipts, m.ReceiptHandle)
				continue
			}
			if _, err := s.k.SQS.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(s.queueURL), ReceiptHandle: aws.String(m.ReceiptHandle)}); err != nil {
				t.Fatalf("delete message: %v", err)
			}
		}
		if len(failed) > 0 {
			return back, receipts
		}
	}
	t.Fatal("the queue did not drain")
	return nil, nil
}

// buildkiteRouter is Buildkite for several tenants: each token reaches
// only its own organization's fake. A request for another organization's
// path is answered 404, as Buildkite answers a token without access, and
// recorded.
type buildkiteRouter struct {
	*httptest.Server
	mu      sync.Mutex
	tenants map[string]routedTenant // by token
	foreign []string                // "token-owner-org METHOD path" of refused requests
	bodies  []string                // every request body kitefix sent
	// intercept, when set, may answer a request itself (true) before the
	// fakes see it: a hang, a cut connection, a truncated body.
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

// setIntercept sets (or, with nil, clears) the router's intercept.
func (r *buildkiteRouter) setIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.intercept = f
}

type routedTenant struct {
	org   string
	fake  *analysistest.Server
	proxy *httputil.ReverseProxy
}

func newBuildkiteRouter(t *testing.T) *buildkiteRouter {
	r := &buildkiteRouter{tenants: map[string]routedTenant{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// add starts a fake for token and org.
func (r *buildkiteRouter) add(t *testing.T, token, org string) *analysistest.Server {
	fake := analysistest.New(t, token, org)
	u, err := url.Parse(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tenants[token] = routedTenant{org: org, fake: fake, proxy: httputil.NewSingleHostReverseProxy(u)}
	return fake
}

func (r *buildkiteRouter) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(strings.NewReader(string(body)))
	token := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	r.mu.Lock()
	r.bodies = append(r.bodies, string(body))
	rt, ok := r.tenants[token]
	intercept := r.intercept
	r.mu.Unlock()
	if intercept != nil && intercept(w, req) {
		return
	}
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"message":"Authentication required. Please supply a valid API Access Token"}`)
		return
	}
	if org := orgOf(req.URL.Path); org != "" && org != rt.org {
		r.mu.Lock()
		r.foreign = append(r.foreign, rt.org+" "+req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"message":"No organization found"}`)
		return
	}
	rt.proxy.ServeHTTP(w, req)
}

// orgOf is the organization a REST path names: /v2/organizations/{org}/…
// or /v2/analytics/organizations/{org}/…; "" for none.
func orgOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/v2/analytics/organizations/")
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/v2/organizations/"); !ok {
			return ""
		}
	}
	org, _, _ := strings.Cut(rest, "/")
	return org
}

// refused returns the requests refused for naming another organization.
func (r *buildkiteRouter) refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.foreign)
}

// sentBodies returns every request body kitefix sent to Buildkite.
func (r *buildkiteRouter) sentBodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}
