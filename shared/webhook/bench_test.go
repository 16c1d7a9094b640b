package webhook

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// paddedJobFinished is the failed-job fixture padded with build metadata
// to about size bytes.
func paddedJobFinished(b *testing.B, size int) []byte {
	var ev map[string]any
	if err := json.Unmarshal(readFixture(b, "job-finished-failed.json"), &ev); err != nil {
		b.Fatal(err)
	}
	meta := map[string]string{}
	ev["build"].(map[string]any)["meta_data"] = meta
	for i := 0; ; i++ {
		out, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) >= size {
			return out
		}
		meta[fmt.Sprintf("release-note-%04d", i)] = "a line of metadata a pipeline attached to the build"
	}
}

func BenchmarkSummarize(b *testing.B) {
	body := paddedJobFinished(b, 16<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Summarize(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is the typed decoding with encoding/json, for
// comparison: the handler reads deliveries with Summarize.
func BenchmarkDecode(b *testing.B) {
	body := paddedJobFinished(b, 16<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidSignature(b *testing.B) {
	body := paddedJobFinished(b, 16<<10)
	now := time.Now()
	header := Sign("secret", now, body)
	secrets := []string{"secret"}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidSignature(header, body, secrets, now); err != nil {
			b.Fatal(err)
		}
	}
}
