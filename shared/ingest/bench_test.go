package ingest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// benchBodySize is the delivery size the handler's work is measured on: a
// job.finished payload with a long command and plenty of metadata.
const benchBodySize = 16 << 10

// largeJobFinished pads the failed-job fixture with build metadata up to
// size bytes.
func largeJobFinished(t testing.TB, size int) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(fixture(t, "job-finished-failed.json"), &ev); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	ev["build"].(map[string]any)["meta_data"] = meta
	for i := 0; ; i++ {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) >= size {
			return b
		}
		meta[fmt.Sprintf("release-note-%04d", i)] = "a line of metadata a pipeline attached to the build"
	}
}

// BenchmarkAssess measures the handler's own work on a 16 KiB job.finished
// delivery (verify the signature, read the payload, decide, build and
// encode the message), without storage or network.
func BenchmarkAssess(b *testing.B) {
	body := largeJobFinished(b, benchBodySize)
	now := time.Now()
	req := signed("job.finished", body, testSecret, now)
	secrets := []string{testSecret}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		a, f := assess(req, testTenant, secrets, now)
		if f != nil || !a.decision.Queue {
			b.Fatalf("assess: %+v %+v", f, a.decision)
		}
	}
}

func TestBenchmarkBody(t *testing.T) {
	body := largeJobFinished(t, benchBodySize)
	if len(body) < benchBodySize || len(body) > benchBodySize+200 {
		t.Errorf("body of %d bytes, want about %d", len(body), benchBodySize)
	}
	a, f := assess(signed("job.finished", body, testSecret, time.Now()), testTenant, []string{testSecret}, time.Now())
	if f != nil || !a.decision.Queue || a.message.JobID != failedJobID {
		t.Errorf("the benchmark delivery is not a queued failed job: %+v %+v", f, a.message)
	}
}
