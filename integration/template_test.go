package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// templatePath is the SAM template at the repository root.
const templatePath = "../template.yaml"

// The logical IDs of the functions; the Makefile has a build-<ID> target
// for each.
const (
	connectFn = "ConnectFunction"
	webhookFn = "WebhookFunction"
	analyzeFn = "AnalyzeFunction"
)

var functionIDs = []string{connectFn, webhookFn, analyzeFn}

// settingsRoutes are the routes of the settings API, as
// "METHOD path".
var settingsRoutes = []string{
	"DELETE /v1/integrations/buildkite",
	"GET /v1/analyses",
	"GET /v1/integrations/buildkite",
	"POST /v1/integrations/buildkite/verify",
	"POST /v1/integrations/buildkite/webhook-secret",
	"PUT /v1/integrations/buildkite",
}

// The resources the policies are scoped to, in the symbolic form of
// symbolize.
const (
	tableARN  = "!GetAtt Table.Arn"
	queueARN  = "!GetAtt AnalyzeQueue.Arn"
	secretARN = "!Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}*"
	// Secrets Manager appends "-" and six characters to a secret's name.
	tokenSecretARN   = secretARN + "/buildkite-api-token-*"
	webhookSecretARN = secretARN + "/webhook-secret-*"
)

// symbolize renders the intrinsic function name applied to arg as one
// string, so that both views of the template (goformation's and the raw
// YAML) compare equal and keep what a reference points at: "!Ref Table",
// "!GetAtt Table.Arn", "!Sub text" and, for the others,
// "!Name <arg as JSON>". Nested intrinsics in arg are already symbolized.
func symbolize(name string, arg any) string {
	switch name {
	case "Ref":
		if s, ok := arg.(string); ok {
			return "!Ref " + s
		}
	case "Fn::GetAtt":
		switch a := arg.(type) {
		case string:
			return "!GetAtt " + a
		case []any:
			parts := make([]string, len(a))
			for i, p := range a {
				parts[i] = fmt.Sprint(p)
			}
			return "!GetAtt " + strings.Join(parts, ".")
		}
	case "Fn::Sub":
		if s, ok := arg.(string); ok {
			return "!Sub " + s
		}
	}
	b, err := json.Marshal(arg)
	if err != nil {
		b = []byte(fmt.Sprintf("%q", fmt.Sprint(arg)))
	}
	return "!" + strings.TrimPrefix(name, "Fn::") + " " + string(b)
}

// intrinsicNames are the intrinsic functions goformation resolves by
// default; the template test keeps them all symbolic instead.
var intrinsicNames = []string{
	"Ref", "Fn::Base64", "Fn::And", "Fn::Equals", "Fn::If", "Fn::Not", "Fn::Or",
	"Fn::FindInMap", "Fn::GetAtt", "Fn::GetAZs", "Fn::ImportValue", "Fn::Join",
	"Fn::Select", "Fn::Split", "Fn::Sub", "Fn::Cidr", "Fn::Transform",
}

// openTemplate parses the template with goformation, keeping every
// intrinsic function as its symbolic string (see symbolize).
func openTemplate(t *testing.T) *cloudformation.Template {
	t.Helper()
	overrides := map[string]intrinsics.IntrinsicHandler{}
	for _, name := range intrinsicNames {
		overrides[name] = func(name string, input, _ any) any { return symbolize(name, input) }
	}
	tmpl, err := goformation.OpenWithOptions(templatePath, &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: overrides})
	if err != nil {
		t.Fatalf("parse %s with goformation: %v", templatePath, err)
	}
	return tmpl
}

// templateTree reads the template as plain maps, slices and scalars, with
// CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...) and long forms
// symbolized. It sees what goformation drops: Globals and the properties
// goformation's types do not know.
func templateTree(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatalf("read template: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse %s as YAML: %v", templatePath, err)
	}
	v, err := plainYAML(&doc)
	if err != nil {
		t.Fatalf("read %s: %v", templatePath, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: top level is %T, want a mapping", templatePath, v)
	}
	return m
}

// plainYAML converts a YAML node to plain Go values, symbolizing intrinsic
// functions.
func plainYAML(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("line %d: want one document", n.Line)
		}
		return plainYAML(n.Content[0])
	case yaml.AliasNode:
		return plainYAML(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := "Fn::" + n.Tag[1:]
		if n.Tag == "!Ref" || n.Tag == "!Condition" {
			name = n.Tag[1:]
		}
		inner := *n
		inner.Tag = ""
		inner.Style &^= yaml.TaggedStyle
		arg, err := plainYAML(&inner)
		if err != nil {
			return nil, err
		}
		return symbolize(name, arg), nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := plainYAML(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		if len(m) == 1 {
			for k, v := range m {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return symbolize(k, v), nil
				}
			}
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := plainYAML(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
}

// at walks tree along path (mapping keys) and returns what is there, or nil.
func at(tree any, path ...string) any {
	for _, k := range path {
		m, ok := tree.(map[string]any)
		if !ok {
			return nil
		}
		tree = m[k]
	}
	return tree
}

// number returns v as an int when it is a whole number (YAML int, JSON
// float64 or numeric string), and false otherwise.
func number(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case float64:
		return int(n), n == float64(int(n))
	case string:
		var i int
		_, err := fmt.Sscanf(n, "%d", &i)
		return i, err == nil && fmt.Sprint(i) == n
	}
	return 0, false
}

// function returns the named AWS::Serverless::Function.
func function(t *testing.T, tmpl *cloudformation.Template, name string) *serverless.Function {
	t.Helper()
	fn, err := tmpl.GetServerlessFunctionWithName(name)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	return fn
}

// effective returns a function property as SAM deploys it: the function's
// own value, else the one in Globals.Function.
func effective(tree map[string]any, fn, prop string) any {
	if v := at(tree, "Resources", fn, "Properties", prop); v != nil {
		return v
	}
	return at(tree, "Globals", "Function", prop)
}

func TestTemplateIsSAM(t *testing.T) {
	tmpl := openTemplate(t)
	if tmpl.Transform == nil || tmpl.Transform.String == nil || *tmpl.Transform.String != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %v, want AWS::Serverless-2016-10-31", tmpl.Transform)
	}
	var got []string
	for _, name := range functionIDs {
		if _, err := tmpl.GetServerlessFunctionWithName(name); err == nil {
			got = append(got, name)
		}
	}
	if diff := cmp.Diff(functionIDs, got); diff != "" {
		t.Errorf("serverless functions (-want +got):\n%s", diff)
	}
	var others []string
	for name, r := range tmpl.Resources {
		if r.AWSCloudFormationType() == "AWS::Serverless::Function" && !slices.Contains(functionIDs, name) {
			others = append(others, name)
		}
	}
	if len(others) > 0 {
		t.Errorf("functions without a Makefile target: %v", others)
	}
}

func TestTemplateFunctionsBuildAndRun(t *testing.T) {
	tmpl := openTemplate(t)
	tree := templateTree(t)
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatalf("read Makefile: %v", err)
	}
	for _, name := range functionIDs {
		t.Run(name, func(t *testing.T) {
			fn := function(t, tmpl, name)
			if got := fn.AWSCloudFormationMetadata["BuildMethod"]; got != "makefile" {
				t.Errorf("Metadata.BuildMethod = %v, want makefile", got)
			}
			target := regexp.MustCompile(`(?m)^build-` + name + `:`)
			if !target.Match(makefile) {
				t.Errorf("Makefile has no build-%s target", name)
			}
			want := map[string]any{
				"Handler":       "bootstrap",
				"Runtime":       "provided.al2023",
				"Architectures": []any{"arm64"},
				"CodeUri":       ".",
				"Tracing":       "Active",
			}
			got := map[string]any{}
			for k := range want {
				got[k] = effective(tree, name, k)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("effective properties (-want +got):\n%s", diff)
			}
			timeout, ok := number(effective(tree, name, "Timeout"))
			if !ok || timeout < 1 || timeout > 900 {
				t.Errorf("Timeout = %v, want 1..900 seconds", effective(tree, name, "Timeout"))
			}
			if name == connectFn && timeout > 30 {
				t.Errorf("Timeout = %d, want at most 30 (the HTTP API integration limit)", timeout)
			}
			if mem, ok := number(effective(tree, name, "MemorySize")); !ok || mem < 128 {
				t.Errorf("MemorySize = %v, want at least 128", effective(tree, name, "MemorySize"))
			}
		})
	}
}

func TestTemplateEnvironment(t *testing.T) {
	tmpl := openTemplate(t)
	tree := templateTree(t)

	shared := map[string]string{
		"TABLE_NAME":        "!Ref Table",
		"SECRET_PREFIX":     "!Ref SecretPrefix",
		"BUILDKITE_API_URL": "!Ref BuildkiteApiUrl",
		"LOG_LEVEL":         "!Ref LogLevel",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range shared {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// webhookURL stands for the WEBHOOK_BASE_URL value, checked apart.
	const webhookURL = "<the webhook function URL>"
	want := map[string]map[string]string{
		connectFn: with(map[string]string{"TENANT_CLAIM": "!Ref TenantClaim", "WEBHOOK_BASE_URL": webhookURL}),
		webhookFn: with(map[string]string{"QUEUE_URL": "!Ref AnalyzeQueue"}),
		analyzeFn: with(map[string]string{"QUEUE_URL": "!Ref AnalyzeQueue", "AUTO_RETRY": "!Ref AutoRetry"}),
	}

	globals, _ := at(tree, "Globals", "Function", "Environment", "Variables").(map[string]any)
	for _, name := range functionIDs {
		t.Run(name, func(t *testing.T) {
			got := map[string]string{}
			for k, v := range globals {
				got[k] = fmt.Sprint(v)
			}
			if env := function(t, tmpl, name).Environment; env != nil {
				for k, v := range env.Variables {
					got[k] = v
				}
			}
			if v, ok := got["WEBHOOK_BASE_URL"]; ok {
				// The URL comes from the webhook function URL SAM makes
				// (WebhookFunctionUrl), with its trailing slash dropped.
				if !strings.HasPrefix(v, "!Sub ") || !strings.Contains(v, "!GetAtt WebhookFunctionUrl.FunctionUrl") || !strings.Contains(v, "https://") {
					t.Errorf("WEBHOOK_BASE_URL = %s, want an https URL made from !GetAtt WebhookFunctionUrl.FunctionUrl", v)
				}
				got["WEBHOOK_BASE_URL"] = webhookURL
			}
			if diff := cmp.Diff(want[name], got); diff != "" {
				t.Errorf("environment (-want +got):\n%s", diff)
			}
		})
	}

	// Every variable the functions read reaches some function.
	for _, v := range []string{"BUILDKITE_API_URL", "TABLE_NAME", "QUEUE_URL", "SECRET_PREFIX", "WEBHOOK_BASE_URL", "TENANT_CLAIM", "AUTO_RETRY", "LOG_LEVEL"} {
		found := false
		for _, env := range want {
			_, ok := env[v]
			found = found || ok
		}
		if !found {
			t.Errorf("no function gets %s", v)
		}
	}
}

func TestTemplateParameters(t *testing.T) {
	tmpl := openTemplate(t)
	want := map[string]any{
		"JwtIssuer":       nil,
		"JwtAudience":     nil,
		"AllowedOrigins":  nil,
		"TenantClaim":     "tenant_id",
		"SecretPrefix":    "kitefix/",
		"BuildkiteApiUrl": "https://api.buildkite.com",
		"AutoRetry":       "true",
		"LogLevel":        "info",
	}
	got := map[string]any{}
	for name, p := range tmpl.Parameters {
		got[name] = p.Default
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parameter defaults (-want +got):\n%s", diff)
	}
}

func TestTemplateSettingsAPI(t *testing.T) {
	tmpl := openTemplate(t)
	tree := templateTree(t)

	api, err := tmpl.GetServerlessHttpApiWithName("HttpApi")
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	if api.Auth == nil || api.Auth.DefaultAuthorizer == nil {
		t.Fatalf("HttpApi has no default authorizer")
	}
	authName := *api.Auth.DefaultAuthorizer
	wantAuth := map[string]any{
		"IdentitySource": "$request.header.Authorization",
		"JwtConfiguration": map[string]any{
			"issuer":   "!Ref JwtIssuer",
			"audience": "!Ref JwtAudience",
		},
	}
	gotAuth := at(tree, "Resources", "HttpApi", "Properties", "Auth", "Authorizers", authName)
	if diff := cmp.Diff(wantAuth, gotAuth); diff != "" {
		t.Errorf("default authorizer %s (-want +got):\n%s", authName, diff)
	}

	// The settings page in the embedding app's origin calls the API with a
	// bearer token and JSON bodies: CORS from the AllowedOrigins parameter,
	// with those headers, the API's methods and Retry-After readable.
	wantCORS := map[string]any{
		"AllowOrigins":     "!Ref AllowedOrigins",
		"AllowMethods":     []any{"GET", "PUT", "POST", "DELETE"},
		"AllowHeaders":     []any{"authorization", "content-type"},
		"ExposeHeaders":    []any{"retry-after"},
		"MaxAge":           600,
		"AllowCredentials": false,
	}
	if diff := cmp.Diff(wantCORS, at(tree, "Resources", "HttpApi", "Properties", "CorsConfiguration")); diff != "" {
		t.Errorf("HttpApi CORS (-want +got):\n%s", diff)
	}

	var got []string
	for name, ev := range function(t, tmpl, connectFn).Events {
		if ev.Type != "HttpApi" {
			t.Errorf("event %s: type %s, want HttpApi", name, ev.Type)
			continue
		}
		if ev.Properties == nil || ev.Properties.HttpApiEvent == nil {
			t.Errorf("event %s: no HttpApi properties", name)
			continue
		}
		p := ev.Properties.HttpApiEvent
		if p.ApiId == nil || *p.ApiId != "!Ref HttpApi" {
			t.Errorf("event %s: ApiId = %v, want !Ref HttpApi", name, p.ApiId)
		}
		if p.PayloadFormatVersion == nil || *p.PayloadFormatVersion != "2.0" {
			t.Errorf("event %s: PayloadFormatVersion = %v, want 2.0", name, p.PayloadFormatVersion)
		}
		if p.Auth != nil {
			t.Errorf("event %s: overrides the default authorizer: %+v", name, *p.Auth)
		}
		if p.Method == nil || p.Path == nil {
			t.Errorf("event %s: no method or path", name)
			continue
		}
		got = append(got, strings.ToUpper(*p.Method)+" "+*p.Path)
	}
	sort.Strings(got)
	if diff := cmp.Diff(settingsRoutes, got); diff != "" {
		t.Errorf("settings API routes (-want +got):\n%s", diff)
	}
	for _, name := range []string{webhookFn, analyzeFn} {
		for evName, ev := range function(t, tmpl, name).Events {
			if ev.Type == "HttpApi" || ev.Type == "Api" {
				t.Errorf("%s: event %s puts it behind API Gateway", name, evName)
			}
		}
	}
}

func TestTemplateWebhookFunctionURL(t *testing.T) {
	tmpl := openTemplate(t)
	fn := function(t, tmpl, webhookFn)
	if fn.FunctionUrlConfig == nil || fn.FunctionUrlConfig.AuthType != "NONE" {
		t.Errorf("%s: FunctionUrlConfig = %+v, want AuthType NONE (the function checks signatures)", webhookFn, fn.FunctionUrlConfig)
	}
	if len(fn.Events) != 0 {
		t.Errorf("%s: has events %v, want only its function URL", webhookFn, fn.Events)
	}
	for _, name := range []string{connectFn, analyzeFn} {
		if function(t, tmpl, name).FunctionUrlConfig != nil {
			t.Errorf("%s: has a function URL", name)
		}
	}
}

func TestTemplateAnalyzeEvents(t *testing.T) {
	tmpl := openTemplate(t)
	tree := templateTree(t)

	types := map[string]string{}
	for name, ev := range function(t, tmpl, analyzeFn).Events {
		types[ev.Type] = name
	}
	if diff := cmp.Diff([]string{"SQS", "Schedule"}, sortedKeys(types)); diff != "" {
		t.Fatalf("%s event types (-want +got):\n%s", analyzeFn, diff)
	}

	// goformation drops FunctionResponseTypes: read the SQS event raw.
	sqsEvent := at(tree, "Resources", analyzeFn, "Properties", "Events", types["SQS"], "Properties")
	if got := at(sqsEvent, "Queue"); got != queueARN {
		t.Errorf("SQS event Queue = %v, want %s", got, queueARN)
	}
	if diff := cmp.Diff([]any{"ReportBatchItemFailures"}, at(sqsEvent, "FunctionResponseTypes")); diff != "" {
		t.Errorf("SQS event FunctionResponseTypes (-want +got):\n%s", diff)
	}
	if n, ok := number(at(sqsEvent, "BatchSize")); !ok || n < 1 || n > 10 {
		t.Errorf("SQS event BatchSize = %v, want 1..10", at(sqsEvent, "BatchSize"))
	}

	schedule := at(tree, "Resources", analyzeFn, "Properties", "Events", types["Schedule"], "Properties")
	expr, _ := at(schedule, "Schedule").(string)
	if !regexp.MustCompile(`^(rate\(\d+ (minute|minutes|hour|hours)\)|cron\(.+\))$`).MatchString(expr) {
		t.Errorf("Schedule = %q, want a rate() or cron() expression", expr)
	}
	if enabled, ok := at(schedule, "Enabled").(bool); ok && !enabled {
		t.Errorf("the reconcile schedule is disabled")
	}
	// The function tells the reconcile pass from a queue batch by the
	// scheduled event itself (events/analyze-schedule.json), so no Input.
	if in := at(schedule, "Input"); in != nil {
		t.Errorf("Schedule Input = %v, want none (the function expects the scheduled event)", in)
	}
}

func TestTemplateQueues(t *testing.T) {
	tmpl := openTemplate(t)
	tree := templateTree(t)

	queue, err := tmpl.GetSQSQueueWithName("AnalyzeQueue")
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	dlq, err := tmpl.GetSQSQueueWithName("AnalyzeDeadLetterQueue")
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	timeout, _ := number(effective(tree, analyzeFn, "Timeout"))
	if queue.VisibilityTimeout == nil || *queue.VisibilityTimeout < 6*timeout {
		t.Errorf("AnalyzeQueue VisibilityTimeout = %v, want at least 6 × %d s (the analyze timeout)", queue.VisibilityTimeout, timeout)
	}
	redrive, _ := queue.RedrivePolicy.(map[string]any)
	maxReceive, _ := number(redrive["maxReceiveCount"])
	gotRedrive := map[string]any{"deadLetterTargetArn": redrive["deadLetterTargetArn"], "maxReceiveCount": maxReceive}
	wantRedrive := map[string]any{"deadLetterTargetArn": "!GetAtt AnalyzeDeadLetterQueue.Arn", "maxReceiveCount": 5}
	if diff := cmp.Diff(wantRedrive, gotRedrive); diff != "" {
		t.Errorf("AnalyzeQueue RedrivePolicy (-want +got):\n%s", diff)
	}
	for name, q := range map[string]*bool{"AnalyzeQueue": queue.SqsManagedSseEnabled, "AnalyzeDeadLetterQueue": dlq.SqsManagedSseEnabled} {
		if q == nil || !*q {
			t.Errorf("%s: SqsManagedSseEnabled is not true", name)
		}
	}
	if queue.MessageRetentionPeriod != nil && (dlq.MessageRetentionPeriod == nil || *dlq.MessageRetentionPeriod <= *queue.MessageRetentionPeriod) {
		t.Errorf("the dead-letter queue must keep messages longer than the queue (%v s)", *queue.MessageRetentionPeriod)
	}

	alarm, err := tmpl.GetCloudWatchAlarmWithName("AnalyzeDeadLetterQueueAlarm")
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	var dims []string
	for _, d := range alarm.Dimensions {
		dims = append(dims, d.Name+"="+d.Value)
	}
	if diff := cmp.Diff([]string{"QueueName=!GetAtt AnalyzeDeadLetterQueue.QueueName"}, dims); diff != "" {
		t.Errorf("DLQ alarm dimensions (-want +got):\n%s", diff)
	}
}

func TestTemplateTable(t *testing.T) {
	tmpl := openTemplate(t)
	table, err := tmpl.GetDynamoDBTableWithName("Table")
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	type attr struct{ Name, Type string }
	var keys, attrs []attr
	for _, k := range table.KeySchema {
		keys = append(keys, attr{k.AttributeName, k.KeyType})
	}
	for _, a := range table.AttributeDefinitions {
		attrs = append(attrs, attr{a.AttributeName, a.AttributeType})
	}
	if diff := cmp.Diff([]attr{{"pk", "HASH"}, {"sk", "RANGE"}}, keys); diff != "" {
		t.Errorf("KeySchema (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]attr{{"pk", "S"}, {"sk", "S"}}, attrs); diff != "" {
		t.Errorf("AttributeDefinitions (-want +got):\n%s", diff)
	}
	if table.BillingMode == nil || *table.BillingMode != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode = %v, want PAY_PER_REQUEST", table.BillingMode)
	}
	if ttl := table.TimeToLiveSpecification; ttl == nil || ttl.AttributeName == nil || *ttl.AttributeName != "ttl" || !ttl.Enabled {
		t.Errorf("TimeToLiveSpecification = %+v, want ttl enabled", ttl)
	}
	if p := table.PointInTimeRecoverySpecification; p == nil || p.PointInTimeRecoveryEnabled == nil || !*p.PointInTimeRecoveryEnabled {
		t.Errorf("point-in-time recovery is not enabled")
	}
	if s := table.SSESpecification; s == nil || !s.SSEEnabled {
		t.Errorf("server-side encryption is not enabled")
	}
	if len(table.GlobalSecondaryIndexes) > 0 || len(table.LocalSecondaryIndexes) > 0 {
		t.Errorf("the table has indexes: scope the function policies to them too")
	}
}

func TestTemplatePoliciesAreScoped(t *testing.T) {
	tmpl := openTemplate(t)
	tree := templateTree(t)

	// want maps each function's allowed actions to the resources they are
	// allowed on.
	// Only what the code calls: the connect function lists analyses
	// (Query) and writes both kinds of secret; the webhook function reads
	// webhook secrets only, the analyze function API tokens only.
	grant := func(m map[string][]string, res string, actions ...string) {
		for _, a := range actions {
			m[a] = append(m[a], res)
		}
	}
	connect, webhook, analyze := map[string][]string{}, map[string][]string{}, map[string][]string{}
	grant(connect, tableARN, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query")
	for _, res := range []string{tokenSecretARN, webhookSecretARN} {
		grant(connect, res, "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue",
			"secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret")
	}
	grant(webhook, tableARN, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
	grant(webhook, webhookSecretARN, "secretsmanager:GetSecretValue")
	grant(webhook, queueARN, "sqs:SendMessage")
	grant(analyze, tableARN, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query")
	grant(analyze, tokenSecretARN, "secretsmanager:GetSecretValue")
	grant(analyze, queueARN, "sqs:SendMessage", "sqs:ChangeMessageVisibility")
	want := map[string]map[string][]string{connectFn: connect, webhookFn: webhook, analyzeFn: analyze}

	for _, name := range functionIDs {
		t.Run(name, func(t *testing.T) {
			// Only inline policy documents: no managed policy names and no
			// SAM policy templates, whose scope the template does not show.
			raw, _ := at(tree, "Resources", name, "Properties", "Policies").([]any)
			if len(raw) == 0 {
				t.Fatalf("no Policies list")
			}
			for i, p := range raw {
				m, ok := p.(map[string]any)
				if !ok || m["Statement"] == nil || len(m) > 2 || (len(m) == 2 && m["Version"] == nil) {
					t.Errorf("Policies[%d] = %v, want an inline policy document", i, p)
				}
			}
			fn := function(t, tmpl, name)
			if fn.Policies == nil || fn.Policies.IAMPolicyDocumentArray == nil {
				t.Fatalf("goformation read no policy documents")
			}
			got := map[string][]string{}
			for _, doc := range *fn.Policies.IAMPolicyDocumentArray {
				for _, s := range doc.Statement {
					st, _ := s.(map[string]any)
					if st["Effect"] != "Allow" {
						t.Errorf("statement %v: Effect is not Allow", st)
					}
					if st["NotAction"] != nil || st["NotResource"] != nil {
						t.Errorf("statement %v: uses NotAction or NotResource", st)
					}
					for _, a := range strings1(st["Action"]) {
						if strings.Contains(a, "*") {
							t.Errorf("action %q: wildcard", a)
						}
						for _, r := range strings1(st["Resource"]) {
							if strings.Contains(r, "*") && r != tokenSecretARN && r != webhookSecretARN {
								t.Errorf("action %s on %q: wildcard resource", a, r)
							}
							got[a] = append(got[a], r)
						}
					}
				}
			}
			if diff := cmp.Diff(want[name], got); diff != "" {
				t.Errorf("allowed actions → resources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTemplateOutputs(t *testing.T) {
	tmpl := openTemplate(t)
	want := []string{"ApiUrl", "DeadLetterQueueUrl", "QueueUrl", "ReconcileFailureQueueUrl", "TableName", "WebhookBaseUrl"}
	if diff := cmp.Diff(want, sortedKeys(tmpl.Outputs)); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
}

// TestTemplateHasNoDependencyCycle follows every reference (Ref, GetAtt,
// ${...} in Sub) between resources, as CloudFormation will see them after
// the SAM transform: a function's Events belong to the generated event
// sources, not to the function, and "<Function>Url" is the function URL
// SAM generates from the function.
func TestTemplateHasNoDependencyCycle(t *testing.T) {
	tree := templateTree(t)
	resources, _ := at(tree, "Resources").(map[string]any)

	owner := map[string]string{} // generated logical ID → its source
	for name := range resources {
		owner[name] = name
		if at(resources, name, "Properties", "FunctionUrlConfig") != nil {
			owner[name+"Url"] = name
		}
	}
	refRE := regexp.MustCompile(`!Ref ([A-Za-z0-9]+)|!GetAtt ([A-Za-z0-9]+)\.|\$\{([A-Za-z0-9]+)[.}]`)
	deps := map[string][]string{}
	for name := range resources {
		r, _ := resources[name].(map[string]any)
		body := map[string]any{}
		for k, v := range r {
			body[k] = v
		}
		if props, ok := r["Properties"].(map[string]any); ok {
			p := map[string]any{}
			for k, v := range props {
				if k != "Events" {
					p[k] = v
				}
			}
			body["Properties"] = p
		}
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, m := range refRE.FindAllStringSubmatch(string(b), -1) {
			ref := m[1] + m[2] + m[3]
			if src, ok := owner[ref]; ok && !slices.Contains(deps[name], src) {
				deps[name] = append(deps[name], src)
			}
		}
	}

	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(string)
	visit = func(n string) {
		switch state[n] {
		case visiting:
			t.Errorf("dependency cycle: %s → %s", strings.Join(path, " → "), n)
			return
		case done:
			return
		}
		state[n] = visiting
		path = append(path, n)
		for _, d := range deps[n] {
			visit(d)
		}
		path = path[:len(path)-1]
		state[n] = done
	}
	for _, name := range sortedKeys(resources) {
		visit(name)
	}
	if !slices.Contains(deps[connectFn], webhookFn) {
		t.Errorf("%s does not depend on %s: where does WEBHOOK_BASE_URL come from?", connectFn, webhookFn)
	}
}

// strings1 returns a policy element (a string or a list of them) as a list.
func strings1(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var s []string
		for _, e := range x {
			s = append(s, fmt.Sprint(e))
		}
		return s
	}
	return nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
