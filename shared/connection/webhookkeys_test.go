package connection

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWebhookKeys(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first := WebhookKeys{Current: "aaa"}
	rotated := first.Rotated("bbb", t0)
	tests := []struct {
		name string
		keys WebhookKeys
		at   time.Time
		want []string
	}{
		{"never rotated", first, t0, []string{"aaa"}},
		{"just rotated", rotated, t0, []string{"bbb", "aaa"}},
		{"within grace", rotated, t0.Add(RotationGrace - time.Second), []string{"bbb", "aaa"}},
		{"grace over", rotated, t0.Add(RotationGrace), []string{"bbb"}},
		{"rotated twice", rotated.Rotated("ccc", t0.Add(time.Hour)), t0.Add(2 * time.Hour), []string{"ccc", "bbb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parsed, err := ParseWebhookKeys(tt.keys.Encode())
			if err != nil {
				t.Fatalf("ParseWebhookKeys: %v", err)
			}
			if diff := cmp.Diff(tt.want, parsed.Valid(tt.at)); diff != "" {
				t.Errorf("Valid (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseWebhookKeys(t *testing.T) {
	t.Parallel()
	got, err := ParseWebhookKeys("plainsecret")
	if err != nil || got.Current != "plainsecret" || got.Previous != "" {
		t.Errorf("plain value: got %v, %v; want the current secret alone", got.Current, err)
	}
	for _, bad := range []string{"", `{"current":""}`, `{"current":"s3cr3t-value"`, `{"previous":"s3cr3t-value"}`} {
		_, err := ParseWebhookKeys(bad)
		if err == nil {
			t.Errorf("ParseWebhookKeys(%q): no error", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ParseWebhookKeys(%q) error %q quotes the secret", bad, err)
		}
	}
}

func TestWebhookKeysNeverPrinted(t *testing.T) {
	t.Parallel()
	k := WebhookKeys{Current: "s3cr3t-one", Previous: "s3cr3t-two"}
	for _, verb := range []string{"%v", "%+v", "%s", "%#v"} {
		if out := fmt.Sprintf(verb, k); strings.Contains(out, "s3cr3t") {
			t.Errorf("Sprintf(%s) = %q: shows a secret", verb, out)
		}
	}
}
