package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/sqsqueue"
)

// Two tenants, each with its own Buildkite organization and token. Their
// builds carry the same ids on purpose: nothing may tell them apart but
// the tenant.
const (
	tenantA = "tenant-alpha"
	tenantB = "tenant-bravo"
	tokenA  = "bkua_aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"
	tokenB  = "bkua_bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222"
	orgA    = "acme"
	orgB    = "globex"
)

// twoTenants connects tenants A and B through the settings API and gives
// each a failed build 3 of pipeline "web" with jobs j-1 and j-2 (the same
// ids in both organizations): A's fail a unit test, B's lost their agent;
// and build 4, with job a-only in A's organization and b-only in B's.
type twoTenants struct {
	s                  *awsStack
	bkA, bkB           *analysistest.Server
	hookA, hookB       string
	secretA, secretB   string
	buildA, buildB     buildkite.Build
	connectA, connectB apiResponse
}

func newTwoTenants(t *testing.T) *twoTenants {
	t.Helper()
	router := newBuildkiteRouter(t)
	e := &twoTenants{bkA: router.add(t, tokenA, orgA), bkB: router.add(t, tokenB, orgB)}
	e.s = newAWSStack(t, router)
	e.buildA = analysistest.FailedBuild(orgA, "web", 3, time.Now(), "j-1", "j-2")
	e.buildB = analysistest.FailedBuild(orgB, "web", 3, time.Now(), "j-1", "j-2")
	e.bkA.AddBuild(e.buildA)
	e.bkB.AddBuild(e.buildB)
	e.bkA.AddBuild(analysistest.FailedBuild(orgA, "web", 4, time.Now(), "a-only"))
	e.bkB.AddBuild(analysistest.FailedBuild(orgB, "web", 4, time.Now(), "b-only"))
	for _, j := range []string{"j-1", "j-2"} {
		e.bkA.SetLogText(j, unitTestLog)
		e.bkB.SetLogText(j, agentLostLog)
	}
	e.connectA = e.s.call(t, tenantA, "PUT", "/v1/integrations/buildkite", `{"token":"`+tokenA+`"}`, nil)
	e.connectB = e.s.call(t, tenantB, "PUT", "/v1/integrations/buildkite", `{"token":"`+tokenB+`"}`, nil)
	if e.connectA.status != 200 || e.connectB.status != 200 {
		t.Fatalf("connect: A %d %s; B %d %s", e.connectA.status, e.connectA.body, e.connectB.status, e.connectB.body)
	}
	e.hookA, e.secretA = e.connectA.webhookOf(t)
	e.hookB, e.secretB = e.connectB.webhookOf(t)
	if e.secretA == "" || e.secretB == "" || e.hookA == e.hookB || e.secretA == e.secretB {
		t.Fatalf("connect handed out webhook ids %q %q with secrets set %v %v", e.hookA, e.hookB, e.secretA != "", e.secretB != "")
	}
	return e
}

// listed returns "org/job_id" of the analyses GET /v1/analyses lists for
// tenant, a page of one at a time.
func (e *twoTenants) listed(t *testing.T, tenant string) []string {
	t.Helper()
	var all []string
	cursor := ""
	for range 20 {
		target := "/v1/analyses?limit=1"
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		r := e.s.call(t, tenant, "GET", target, "", nil)
		if r.status != 200 {
			t.Fatalf("%s: GET %s = %d %s", tenant, target, r.status, r.body)
		}
		for _, a := range r.json["analyses"].([]any) {
			m := a.(map[string]any)
			if _, ok := m["tenant_id"]; ok {
				t.Errorf("%s: an analysis shows its tenant: %v", tenant, m)
			}
			all = append(all, fmt.Sprint(m["org"], "/", m["job_id"]))
		}
		next, _ := r.json["next_cursor"].(string)
		if next == "" {
			return all
		}
		cursor = next
	}
	t.Fatalf("%s: more than 20 pages", tenant)
	return nil
}

// TestTenancyThroughEveryPath runs two tenants through the settings API,
// the webhook function and the analyze function on kumo, and checks that
// no route, cursor, webhook id, secret or queue message lets one tenant
// read, change or receive the other's connection, deliveries or analyses.
func TestTenancyThroughEveryPath(t *testing.T) {
	e := newTwoTenants(t)
	s := e.s

	// The settings API answers for the claim's tenant alone; a tenant named
	// in a header or the body changes nothing.
	statusB := s.call(t, tenantB, "GET", "/v1/integrations/buildkite", "", nil)
	forged := s.call(t, tenantA, "GET", "/v1/integrations/buildkite", "", map[string]string{"x-tenant-id": tenantB, "tenant_id": tenantB})
	if forged.status != 200 || strings.Contains(forged.body, orgB) || !strings.Contains(forged.body, orgA) {
		t.Errorf("A's status with B named in headers = %d %s", forged.status, forged.body)
	}
	if r := s.call(t, "", "GET", "/v1/integrations/buildkite", "", map[string]string{"x-tenant-id": tenantA}); r.status != http.StatusUnauthorized {
		t.Errorf("no claim, a tenant header: %d %s; want 401", r.status, r.body)
	}
	if r := s.call(t, tenantA, "PUT", "/v1/integrations/buildkite", `{"token":"`+tokenA+`","tenant_id":"`+tenantB+`"}`, nil); r.status == 200 && strings.Contains(r.body, orgB) {
		t.Errorf("a tenant in the body reached B: %s", r.body)
	}

	// A webhook id authenticates only with its own tenant's secret.
	bodyA := analysistest.JobFinished(orgA, e.buildA, "j-1")
	bodyB := analysistest.JobFinished(orgB, e.buildB, "j-1")
	unauth := func(id, secret string, body []byte) string {
		status, resp := s.deliver(t, id, secret, "job.finished", body)
		if status != http.StatusUnauthorized {
			t.Errorf("delivery to %s signed with the other secret: %d %s; want 401", id, status, resp)
		}
		return resp
	}
	r1 := unauth(e.hookA, e.secretB, bodyA)
	r2 := unauth(e.hookB, e.secretA, bodyB)
	if status, _ := s.deliverWith(t, e.hookA, map[string]string{"x-buildkite-event": "job.finished", "x-buildkite-token": e.secretB}, bodyA); status != http.StatusUnauthorized {
		t.Errorf("A's id with B's secret as a token: %d; want 401", status)
	}
	_, r3 := s.deliver(t, "00000000000000000000000000000000", e.secretA, "job.finished", bodyA)
	if r1 != r2 || r1 != r3 {
		t.Errorf("401 bodies differ: %q %q %q", r1, r2, r3)
	}
	if msgs := s.receive(t, s.queueURL); len(msgs.Records) != 0 {
		t.Fatalf("refused deliveries queued %d messages", len(msgs.Records))
	}

	// The same job id in both organizations is queued once for each tenant.
	for _, d := range []struct{ id, secret string }{{e.hookA, e.secretA}, {e.hookB, e.secretB}} {
		body := bodyA
		if d.id == e.hookB {
			body = bodyB
		}
		for range 2 {
			s.deliver(t, d.id, d.secret, "job.finished", body)
		}
	}
	ev := s.receive(t, s.queueURL)
	tenantsQueued := map[string]int{}
	for _, r := range ev.Records {
		m, err := queue.Decode([]byte(r.Body))
		if err != nil {
			t.Fatalf("queued message: %v", err)
		}
		tenantsQueued[m.TenantID+"/"+m.Org]++
	}
	if tenantsQueued[tenantA+"/"+orgA] != 1 || tenantsQueued[tenantB+"/"+orgB] != 1 || len(tenantsQueued) != 2 {
		t.Fatalf("queued %v; want one message for each tenant's own org", tenantsQueued)
	}
	// Let the messages be seen again, then analyze.
	time.Sleep(1100 * time.Millisecond)
	if back := s.drain(t); len(back) != 0 {
		t.Fatalf("messages went back: %v", back)
	}

	// B signs a delivery naming A's organization: it is B's work, done with
	// B's token, which Buildkite refuses for A's organization.
	buildA4, _ := e.bkA.Build("web", 4)
	crossBody := analysistest.JobFinished(orgA, buildA4, "a-only")
	if status, resp := s.deliver(t, e.hookB, e.secretB, "job.finished", crossBody); status != http.StatusAccepted {
		t.Fatalf("B's delivery naming A's org: %d %s", status, resp)
	}
	// A queue message naming A but B's organization is processed with A's
	// token, which reaches only A's organization.
	q := sqsqueue.New(s.k.SQS, s.queueURL)
	forgedMsg, _ := queue.Encode(queue.Message{Kind: queue.KindJob, TenantID: tenantA, Org: orgB, Pipeline: "web", BuildNumber: 4,
		BuildID: "build-web-4", JobID: "b-only", Reason: queue.ReasonWebhook, QueuedAt: time.Now().UTC()})
	if err := q.Send(context.Background(), forgedMsg, "forged"); err != nil {
		t.Fatal(err)
	}
	if back := s.drain(t); len(back) != 0 {
		t.Fatalf("messages went back: %v", back)
	}
	refused := e.s.bk.refused()
	slices.Sort(refused)
	want := []string{orgA + " GET /v2/organizations/" + orgB + "/pipelines/web/builds/4", orgB + " GET /v2/organizations/" + orgA + "/pipelines/web/builds/4"}
	if diff := cmp.Diff(want, refused); diff != "" {
		t.Errorf("requests refused for naming another org (token owner, request) (-want +got):\n%s", diff)
	}

	// Each fake saw only its own token (the router sends a token to its
	// own fake) and got the annotations and retries of its own jobs.
	if n := len(e.bkA.Annotations()); n == 0 {
		t.Errorf("A's build not annotated")
	}
	for _, a := range e.bkA.Annotations() {
		if strings.Contains(a.Body, "infrastructure") || strings.Contains(a.Body, orgB) {
			t.Errorf("A's annotation speaks of B's jobs: %s", a.Body)
		}
	}
	for _, a := range e.bkB.Annotations() {
		if strings.Contains(a.Body, "TestWidgetSave") || strings.Contains(a.Body, orgA) {
			t.Errorf("B's annotation speaks of A's jobs: %s", a.Body)
		}
	}
	if got := e.bkA.Retries(); len(got) != 0 {
		t.Errorf("A's unit-test failure retried: %v", got)
	}
	if got := e.bkB.Retries(); len(got) != 1 || got[0] != "j-1" {
		t.Errorf("B's retries %v; want [j-1]", got)
	}

	// Each lists its own analyses, whatever cursor it is handed.
	wantA, wantB := []string{orgA + "/j-1", orgB + "/b-only"}, []string{orgA + "/a-only", orgB + "/j-1"}
	for _, c := range []struct {
		tenant string
		want   []string
	}{{tenantA, wantA}, {tenantB, wantB}} {
		got := e.listed(t, c.tenant)
		slices.Sort(got)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s lists (-want +got):\n%s", c.tenant, diff)
		}
	}
	store := dynamostore.NewAnalyses(s.k.DynamoDB, s.k.Table)
	check := func(tenant, job string, want analysis.State, category string) {
		t.Helper()
		rec, err := store.GetAnalysis(context.Background(), tenant, "job:"+job)
		if err != nil {
			t.Fatalf("%s's analysis of %s: %v", tenant, job, err)
		}
		if rec.State != want || (category != "" && string(rec.Category) != category) {
			t.Errorf("%s's analysis of %s: %s %s %q; want %s %s", tenant, job, rec.State, rec.Category, rec.Error, want, category)
		}
	}
	check(tenantA, "j-1", analysis.StateAnalyzed, "test")
	check(tenantB, "j-1", analysis.StateAnalyzed, "infrastructure")
	check(tenantB, "a-only", analysis.StateFailed, "") // B's token on A's org
	check(tenantA, "b-only", analysis.StateFailed, "") // A's token on B's org
	first := s.call(t, tenantA, "GET", "/v1/analyses?limit=1", "", nil)
	cursorA, _ := first.json["next_cursor"].(string)
	if cursorA == "" {
		t.Fatalf("A's first page has no cursor: %s", first.body)
	}
	withA := s.call(t, tenantB, "GET", "/v1/analyses?limit=10&cursor="+cursorA, "", nil)
	if withA.status == 200 {
		for _, a := range withA.json["analyses"].([]any) {
			m := a.(map[string]any)
			if got := fmt.Sprint(m["org"], "/", m["job_id"]); !slices.Contains(wantB, got) {
				t.Errorf("B, with A's cursor, lists %s", got)
			}
		}
	} else if withA.status != http.StatusBadRequest {
		t.Errorf("B with A's cursor: %d %s; want 200 (B's own) or 400", withA.status, withA.body)
	}

	// A's rotation, re-verification and disconnection leave B as it was.
	rotA := s.call(t, tenantA, "POST", "/v1/integrations/buildkite/webhook-secret", "", nil)
	_, newSecretA := rotA.webhookOf(t)
	if rotA.status != 200 || newSecretA == "" || newSecretA == e.secretA {
		t.Fatalf("rotate A: %d %s", rotA.status, rotA.body)
	}
	if r := s.call(t, tenantA, "POST", "/v1/integrations/buildkite/verify", "", nil); r.status != 200 {
		t.Errorf("verify A: %d %s", r.status, r.body)
	}
	unauth(e.hookB, newSecretA, bodyB)
	if r := s.call(t, tenantA, "DELETE", "/v1/integrations/buildkite", "", nil); r.status != 200 || r.json["state"] != "disconnected" {
		t.Fatalf("disconnect A: %d %s", r.status, r.body)
	}
	unauth(e.hookA, newSecretA, bodyA)
	after := s.call(t, tenantB, "GET", "/v1/integrations/buildkite", "", nil)
	if stripTimes(after.body) != stripTimes(statusB.body) || after.json["state"] != "connected" {
		t.Errorf("B's status changed under A's changes:\nbefore %s\nafter  %s", statusB.body, after.body)
	}
	if status, resp := s.deliver(t, e.hookB, e.secretB, "job.finished", analysistest.JobFinished(orgB, e.buildB, "j-2")); status != http.StatusAccepted {
		t.Errorf("B's delivery after A disconnected: %d %s; want 202", status, resp)
	}
	if back := s.drain(t); len(back) != 0 {
		t.Fatalf("messages went back: %v", back)
	}
	if got := e.listed(t, tenantB); len(got) != 3 {
		t.Errorf("B lists %v after A's changes; want its 3", got)
	}
}

// stripTimes drops the fields of a status record that move on their own
// (times), so two reads can be compared.
func stripTimes(body string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return body
	}
	if wh, ok := m["webhook"].(map[string]any); ok {
		delete(wh, "last_delivery_at")
	}
	b, _ := json.Marshal(m)
	return string(b)
}
