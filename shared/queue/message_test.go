package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validJob() Message {
	return Message{
		Kind: KindJob, TenantID: "t1", Org: "acme", Pipeline: "app",
		BuildNumber: 42, BuildID: "b-1", JobID: "j-1",
		Reason: ReasonWebhook, QueuedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	build := validJob()
	build.Kind, build.JobID, build.Reason = KindBuild, "", ReasonReconcile
	for _, want := range []Message{validJob(), build} {
		b, err := Encode(want)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", want, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestWireFieldNames(t *testing.T) {
	t.Parallel()
	b, err := Encode(validJob())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"job","tenant_id":"t1","org":"acme","pipeline":"app","build_number":42,"build_id":"b-1","job_id":"j-1","reason":"webhook","queued_at":"2026-01-02T03:04:05Z"}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("encoded message (-want +got):\n%s", diff)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"not json", `nope`, "invalid character"},
		{"unknown field", `{"kind":"job","tenant_id":"t","org":"o","pipeline":"p","build_number":1,"job_id":"j","reason":"webhook","extra":1}`, "unknown field"},
		{"trailing data", `{"kind":"job","tenant_id":"t","org":"o","pipeline":"p","build_number":1,"job_id":"j","reason":"webhook"} {}`, "data after the object"},
		{"bad kind", `{"kind":"step","tenant_id":"t","org":"o","pipeline":"p","build_number":1,"job_id":"j","reason":"webhook"}`, "want job or build"},
		{"no tenant", `{"kind":"job","org":"o","pipeline":"p","build_number":1,"job_id":"j","reason":"webhook"}`, "tenant_id is empty"},
		{"no pipeline", `{"kind":"job","tenant_id":"t","org":"o","build_number":1,"job_id":"j","reason":"webhook"}`, "org and pipeline"},
		{"zero build", `{"kind":"job","tenant_id":"t","org":"o","pipeline":"p","build_number":0,"job_id":"j","reason":"webhook"}`, "build_number 0"},
		{"job without id", `{"kind":"job","tenant_id":"t","org":"o","pipeline":"p","build_number":1,"reason":"webhook"}`, "job_id is required"},
		{"build with job", `{"kind":"build","tenant_id":"t","org":"o","pipeline":"p","build_number":1,"job_id":"j","reason":"webhook"}`, "must be empty"},
		{"bad reason", `{"kind":"job","tenant_id":"t","org":"o","pipeline":"p","build_number":1,"job_id":"j","reason":"cron"}`, "want webhook or reconcile"},
		{"too large", `{"kind":"` + strings.Repeat("x", MaxSize) + `"}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode(%.60s) = %v, want an error containing %q", tt.body, err, tt.want)
			}
		})
	}
}

func TestDedupeKey(t *testing.T) {
	t.Parallel()
	build := validJob()
	build.Kind, build.JobID = KindBuild, ""
	tests := []struct {
		m    Message
		want string
	}{{validJob(), "job:j-1"}, {build, "build:b-1"}}
	for _, tt := range tests {
		if got := tt.m.DedupeKey(); got != tt.want {
			t.Errorf("DedupeKey(%s) = %q, want %q", tt.m.Kind, got, tt.want)
		}
	}
}
