package integration

import (
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTemplateSecretPrefix: the prefix the policies scope secrets to ends
// in "/", so that ${SecretPrefix}* cannot reach secrets that merely start
// alike (kitefix* would match kitefix-billing/...).
func TestTemplateSecretPrefix(t *testing.T) {
	tree := templateTree(t)
	pattern, _ := at(tree, "Parameters", "SecretPrefix", "AllowedPattern").(string)
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("SecretPrefix AllowedPattern %q: %v", pattern, err)
	}
	for prefix, want := range map[string]bool{
		"kitefix/":      true,
		"team-a/kf/":    true,
		"prod.kitefix/": true,
		"kitefix":       false,
		"":              false,
		"/":             false,
		"kitefix/*":     false,
		"kite fix/":     false,
		"kitefix/\n":    false,
	} {
		if got := re.MatchString(prefix); got != want {
			t.Errorf("SecretPrefix %q allowed = %v, want %v", prefix, got, want)
		}
	}
	if def, _ := at(tree, "Parameters", "SecretPrefix", "Default").(string); !re.MatchString(def) {
		t.Errorf("the default SecretPrefix %q does not match its own pattern", def)
	}
}

// TestTemplateWebhookConcurrency: the public webhook function has reserved
// concurrency, which also caps it.
func TestTemplateWebhookConcurrency(t *testing.T) {
	fn := function(t, openTemplate(t), webhookFn)
	if n := fn.ReservedConcurrentExecutions; n == nil || *n < 1 || *n > 100 {
		t.Errorf("%s ReservedConcurrentExecutions = %v, want 1..100", webhookFn, n)
	}
}

// TestTemplateLogGroups: every function logs to a group the stack makes,
// with a retention.
func TestTemplateLogGroups(t *testing.T) {
	tmpl := openTemplate(t)
	groups := map[string]int{} // LogGroupName → RetentionInDays
	for name, g := range tmpl.GetAllLogsLogGroupResources() {
		if g.LogGroupName == nil || g.RetentionInDays == nil {
			t.Errorf("log group %s: no name or no retention", name)
			continue
		}
		groups[*g.LogGroupName] = *g.RetentionInDays
	}
	for _, name := range functionIDs {
		days, ok := groups["!Sub /aws/lambda/${"+name+"}"]
		if !ok {
			t.Errorf("%s: no log group /aws/lambda/${%s}", name, name)
			continue
		}
		if days < 1 || days > 365 {
			t.Errorf("%s: logs kept %d days, want 1..365", name, days)
		}
	}
}

// TestTemplateHTTPAPIThrottling: the settings API throttles every route.
func TestTemplateHTTPAPIThrottling(t *testing.T) {
	tree := templateTree(t)
	settings := at(tree, "Resources", "HttpApi", "Properties", "DefaultRouteSettings")
	burst, okB := number(at(settings, "ThrottlingBurstLimit"))
	rate, okR := number(at(settings, "ThrottlingRateLimit"))
	if !okB || !okR || burst < 1 || rate < 1 || burst > 1000 || rate > 1000 {
		t.Errorf("HttpApi DefaultRouteSettings = %v, want ThrottlingBurstLimit and ThrottlingRateLimit in 1..1000", settings)
	}
}

// TestTemplateReconcileFailures: a scheduled reconcile pass that fails, in
// the function or on the way to it, lands in a queue with an alarm.
func TestTemplateReconcileFailures(t *testing.T) {
	tmpl := openTemplate(t)
	tree := templateTree(t)
	const queue = "ReconcileFailureQueue"
	queueArn := "!GetAtt " + queue + ".Arn"

	onFailure := at(tree, "Resources", analyzeFn, "Properties", "EventInvokeConfig", "DestinationConfig", "OnFailure")
	if diff := cmp.Diff(map[string]any{"Type": "SQS", "Destination": queueArn}, onFailure); diff != "" {
		t.Errorf("%s EventInvokeConfig OnFailure (-want +got):\n%s", analyzeFn, diff)
	}

	var schedule string
	for name, ev := range function(t, tmpl, analyzeFn).Events {
		if ev.Type == "Schedule" {
			schedule = name
		}
	}
	dlq := at(tree, "Resources", analyzeFn, "Properties", "Events", schedule, "Properties", "DeadLetterConfig", "Arn")
	if dlq != queueArn {
		t.Errorf("schedule %s DeadLetterConfig Arn = %v, want %s", schedule, dlq, queueArn)
	}

	// EventBridge may send to the queue, for this rule only.
	var allowed bool
	for name, p := range tmpl.GetAllSQSQueuePolicyResources() {
		doc, _ := p.PolicyDocument.(map[string]any)
		statements, _ := doc["Statement"].([]any)
		for _, s := range statements {
			st, _ := s.(map[string]any)
			if at(st, "Principal", "Service") == "events.amazonaws.com" && st["Action"] == "sqs:SendMessage" &&
				st["Resource"] == queueArn && at(st, "Condition", "ArnEquals", "aws:SourceArn") == "!GetAtt "+analyzeFn+schedule+".Arn" {
				allowed = true
			}
		}
		if len(p.Queues) != 1 || p.Queues[0] != "!Ref "+queue {
			t.Errorf("queue policy %s applies to %v", name, p.Queues)
		}
	}
	if !allowed {
		t.Errorf("no queue policy lets the %s rule send to %s", schedule, queue)
	}

	q, err := tmpl.GetSQSQueueWithName(queue)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	if q.SqsManagedSseEnabled == nil || !*q.SqsManagedSseEnabled {
		t.Errorf("%s: SqsManagedSseEnabled is not true", queue)
	}
	var alarmed bool
	for _, a := range tmpl.GetAllCloudWatchAlarmResources() {
		for _, d := range a.Dimensions {
			alarmed = alarmed || (d.Name == "QueueName" && d.Value == "!GetAtt "+queue+".QueueName")
		}
	}
	if !alarmed {
		t.Errorf("no alarm watches %s", queue)
	}
}
