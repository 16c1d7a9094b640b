package queue

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecode: any bytes decode or fail cleanly; what decodes is a valid
// message, no larger than MaxSize, that encodes and decodes back to itself.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"kind":"job","tenant_id":"t","org":"acme","pipeline":"web","build_number":3,"build_id":"b","job_id":"j","reason":"webhook","queued_at":"2025-07-23T06:07:42Z"}`))
	f.Add([]byte(`{"kind":"build","tenant_id":"t","org":"acme","pipeline":"web","build_number":1,"build_id":"b","job_id":"","reason":"reconcile","queued_at":"2025-07-23T06:07:42.123456789+02:00"}`))
	f.Add([]byte(`{"kind":"job","tenant_id":`))
	f.Add([]byte(`{"kind":"job"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if len(b) > MaxSize {
			t.Fatalf("decoded %d bytes, more than MaxSize", len(b))
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded an invalid message: %v", err)
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("encode a decoded message: %v", err)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("decode %s: %v", enc, err)
		}
		if diff := cmp.Diff(m, back); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		if m.DedupeKey() == "" {
			t.Fatal("empty dedupe key")
		}
	})
}
