package webhook

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/queue"
)

func compact(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plain decodes JSON into maps and lists, drops what is zero (null, false,
// 0, "", empty objects and lists) and reads RFC 3339 strings as instants,
// so a fixture and the re-encoding of its typed value compare equal when
// the types kept everything the fixture says.
func plain(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return prune(v)
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			if e = prune(e); e != nil {
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
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = prune(e)
		}
		return out
	case string:
		if x == "" {
			return nil
		}
		if ts, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return ts.UTC().Format(time.RFC3339Nano)
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

func fixtures(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob("testdata/*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

// decodeFixture reads testdata/name and decodes it, failing the test when
// it does not decode.
func decodeFixture(t *testing.T, name string) ([]byte, Event) {
	t.Helper()
	in := readFixture(t, name)
	ev, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	return in, ev
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, ev := decodeFixture(t, name)
			out, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(plain(t, in), plain(t, out)); diff != "" {
				t.Errorf("round trip (-fixture +re-encoded):\n%s", diff)
			}
		})
	}
}

// TestSummarizeAgreesWithDecode: the one-pass reader gives the fields the
// typed decoding gives, on every fixture.
func TestSummarizeAgreesWithDecode(t *testing.T) {
	t.Parallel()
	for _, name := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, ev := decodeFixture(t, name)
			got, err := Summarize(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ev.Summary(), got); diff != "" {
				t.Errorf("Summarize (-Decode +Summarize):\n%s", diff)
			}
		})
	}
}

func TestDecodeFields(t *testing.T) {
	t.Parallel()
	ev, err := Decode(readFixture(t, "job-finished-failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := ev.Summary()
	exit := 1
	want := Summary{
		Event: "job.finished",
		Job:   JobSummary{ID: "01987a3e-6a2b-4c3d-8e9f-0a1b2c3d4e5f", Type: "script", State: "failed", ExitStatus: &exit},
		Build: BuildSummary{
			ID: "01987a3e-5c1f-4b8e-9d2a-3f4b5c6d7e80", Number: 1234, State: "failing",
			URL:    "https://api.buildkite.com/v2/organizations/acme-inc/pipelines/web/builds/1234",
			WebURL: "https://buildkite.com/acme-inc/web/builds/1234",
		},
		Pipeline: PipelineSummary{Slug: "web", URL: "https://api.buildkite.com/v2/organizations/acme-inc/pipelines/web"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if got.Org() != "acme-inc" {
		t.Errorf("Org = %q, want acme-inc", got.Org())
	}
	if ev.Job.Agent == nil || ev.Job.Agent.Hostname != "ci-agent-1" || ev.Sender == nil || ev.Sender.Name != "Some Person" {
		t.Errorf("agent %+v sender %+v", ev.Job.Agent, ev.Sender)
	}
}

func TestOrg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    Summary
		want string
	}{
		{"pipeline url", Summary{Pipeline: PipelineSummary{URL: "https://api.buildkite.com/v2/organizations/acme/pipelines/web"}}, "acme"},
		{"build url", Summary{Build: BuildSummary{URL: "https://api.buildkite.com/v2/organizations/acme/pipelines/web/builds/1"}}, "acme"},
		{"web url", Summary{Build: BuildSummary{WebURL: "https://buildkite.com/acme/web/builds/1"}}, "acme"},
		{"none", Summary{}, ""},
	}
	for _, tt := range tests {
		if got := tt.s.Org(); got != tt.want {
			t.Errorf("%s: Org = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture string
		event   string // the X-Buildkite-Event header; "" means the body's
		want    Decision
	}{
		{"ping.json", "", Decision{Why: "ping"}},
		{"job-finished-failed.json", "", Decision{Queue: true, Kind: queue.KindJob, Why: "job failed"}},
		{"job-finished-timed-out.json", "", Decision{Queue: true, Kind: queue.KindJob, Why: "job timed_out"}},
		{"job-finished-passed.json", "", Decision{Why: "job passed"}},
		{"job-finished-soft-failed.json", "", Decision{Why: "job soft failed"}},
		{"job-finished-canceled.json", "", Decision{Why: "job canceled"}},
		{"job-finished-trigger.json", "", Decision{Why: "not a command job"}},
		{"build-finished-failed.json", "", Decision{Queue: true, Kind: queue.KindBuild, Why: "build failed"}},
		{"build-failing.json", "", Decision{Queue: true, Kind: queue.KindBuild, Why: "build failing"}},
		{"build-finished-passed.json", "", Decision{Why: "build passed"}},
		{"build-finished-canceled.json", "", Decision{Why: "build canceled"}},
		{"job-finished-failed.json", "job.started", Decision{Why: "event not used"}},
		{"build-finished-failed.json", "build.running", Decision{Why: "event not used"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+" "+tt.event, func(t *testing.T) {
			t.Parallel()
			s, err := Summarize(readFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			event := tt.event
			if event == "" {
				event = s.Event
			}
			if diff := cmp.Diff(tt.want, Decide(event, s)); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideJobStates(t *testing.T) {
	t.Parallel()
	exit := func(n int) *int { return &n }
	tests := []struct {
		name string
		job  JobSummary
		want bool
	}{
		{"failed", JobSummary{State: "failed", ExitStatus: exit(1)}, true},
		{"failed, no exit status", JobSummary{State: "failed"}, true},
		{"timed out", JobSummary{State: "timed_out"}, true},
		{"broken after running", JobSummary{State: "broken", ExitStatus: exit(2)}, true},
		{"broken before running", JobSummary{State: "broken"}, false},
		{"finished with exit 1", JobSummary{State: "finished", ExitStatus: exit(1)}, true},
		{"passed", JobSummary{State: "passed", ExitStatus: exit(0)}, false},
		{"soft failed", JobSummary{State: "failed", SoftFailed: true, ExitStatus: exit(1)}, false},
		{"canceled with exit -1", JobSummary{State: "canceled", ExitStatus: exit(-1)}, false},
		{"expired", JobSummary{State: "expired"}, false},
		{"waiter", JobSummary{Type: "waiter", State: "failed"}, false},
		{"manual", JobSummary{Type: "manual", State: "failed"}, false},
	}
	for _, tt := range tests {
		if got := Decide(EventJobFinished, Summary{Job: tt.job}).Queue; got != tt.want {
			t.Errorf("%s: queue = %t, want %t", tt.name, got, tt.want)
		}
	}
}

func TestDecisionMessage(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 7, 20, 15, 6, 42, 0, time.UTC)
	s, err := Summarize(readFixture(t, "job-finished-failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decide(s.Event, s).Message(s, "tenant-1", now)
	if err != nil {
		t.Fatal(err)
	}
	want := queue.Message{
		Kind: queue.KindJob, TenantID: "tenant-1", Org: "acme-inc", Pipeline: "web", BuildNumber: 1234,
		BuildID: "01987a3e-5c1f-4b8e-9d2a-3f4b5c6d7e80", JobID: "01987a3e-6a2b-4c3d-8e9f-0a1b2c3d4e5f",
		Reason: queue.ReasonWebhook, QueuedAt: now,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}

	b, err := Summarize(readFixture(t, "build-finished-failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decide(b.Event, b).Message(b, "tenant-1", now)
	if err != nil || m.Kind != queue.KindBuild || m.JobID != "" || m.BuildNumber != 1234 {
		t.Errorf("build message = %+v, %v", m, err)
	}

	s.Pipeline = PipelineSummary{}
	if _, err := Decide(s.Event, s).Message(s, "tenant-1", now); err == nil {
		t.Errorf("a failed job without its pipeline made a message")
	}
}

func TestSummarizeRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"event":"ping"`, `{"event":"ping"} x`, `{"event":1}`,
		`{"job":"x"}`, `{"job":{"exit_status":"1"}}`, `{"build":{"number":1.5}}`, `{"job":{"soft_failed":1}}`,
		`{"a":tru}`, `{"a":01}`, `{"a":"\x01"}`, `{"a":"\q"}`, `{"a":[1,]}`, `{"a":1,}`, `{,}`,
		"\xef\xbb\xbf{}",
	} {
		if _, err := Summarize([]byte(in)); err == nil {
			t.Errorf("Summarize(%q) succeeded", in)
		}
		if _, err := Decode([]byte(in)); err == nil && !json.Valid([]byte(in)) {
			t.Errorf("Decode(%q) succeeded on invalid JSON", in)
		}
	}
}

func TestSummarizeReadsLikeEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"EVENT":"job.finished","Job":{"ID":"a","state":"failed","state":null}}`,
		`{"job":{"id":"a"},"job":{"state":"failed"}}`,
		`{"job":{"id":"a"},"job":null}`,
		`{"job":{"id":"\u0061\"b\\"},"event":"x\u00e9"}`,
		`{"job":{"exit_status":1,"exit_status":null}}`,
		`{"build":{"number":-0,"url":"x"},"pipeline":{"slug":"\ud83d\ude00"}}`,
		"{\"job\":{\"id\":\"\xff\"}}",
		` { "a" : [ 1 , { "b" : [ ] } , -1.5e+3 , true , false , null ] } `,
	} {
		ev, err := Decode([]byte(in))
		if err != nil {
			t.Fatalf("Decode(%q): %v", in, err)
		}
		got, err := Summarize([]byte(in))
		if err != nil {
			t.Fatalf("Summarize(%q): %v", in, err)
		}
		if diff := cmp.Diff(ev.Summary(), got); diff != "" {
			t.Errorf("%s (-Decode +Summarize):\n%s", in, diff)
		}
	}
}

// FuzzSummarize: the one-pass reader never panics, refuses what is not
// valid JSON, and agrees with Decode whenever Decode succeeds.
func FuzzSummarize(f *testing.F) {
	for _, name := range []string{"ping.json", "job-finished-failed.json", "build-finished-failed.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"job":{"id":"a\"b","exit_status":-1},"build":{"number":3}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Summarize(body)
		if err != nil {
			if json.Valid(body) {
				if _, derr := Decode(body); derr == nil {
					t.Fatalf("Summarize refused what Decode accepts: %v", err)
				}
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("Summarize accepted invalid JSON")
		}
		ev, err := Decode(body)
		if err != nil {
			return // a field Summarize does not read has the wrong type
		}
		if diff := cmp.Diff(ev.Summary(), got); diff != "" {
			t.Fatalf("(-Decode +Summarize):\n%s", diff)
		}
		_ = Decide(got.Event, got)
	})
}
