package analysis

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

func TestRedactResult(t *testing.T) {
	t.Parallel()
	const token = "bkua_0123456789abcdef0123456789abcdef01234567"
	in := loganalysis.Result{
		Category:     loganalysis.CategoryInfrastructure,
		Summary:      "Error: token " + token + " rejected",
		Section:      "Deploy with " + token,
		Command:      "curl -H 'Authorization: Bearer " + token + "'",
		Excerpts:     []loganalysis.Excerpt{{StartLine: 3, EndLine: 4, Text: "export BUILDKITE_API_TOKEN=" + token + "\nError: token " + token + " rejected"}},
		FailingTests: []loganalysis.FailingTest{{Name: "TestToken/" + token, File: "a_test.go"}},
		Errors:       []loganalysis.ErrorLocation{{File: "a.go", Line: 1, Message: "bad token " + token}},
		Fingerprint:  "f00d",
	}
	tests := []struct {
		name    string
		in      loganalysis.Result
		secrets []string
		want    loganalysis.Result
	}{
		{
			name: "every text", in: in, secrets: []string{token},
			want: loganalysis.Result{
				Category:     loganalysis.CategoryInfrastructure,
				Summary:      "Error: token [redacted] rejected",
				Section:      "Deploy with [redacted]",
				Command:      "curl -H 'Authorization: Bearer [redacted]'",
				Excerpts:     []loganalysis.Excerpt{{StartLine: 3, EndLine: 4, Text: "export BUILDKITE_API_TOKEN=[redacted]\nError: token [redacted] rejected"}},
				FailingTests: []loganalysis.FailingTest{{Name: "TestToken/[redacted]", File: "a_test.go"}},
				Errors:       []loganalysis.ErrorLocation{{File: "a.go", Line: 1, Message: "bad token [redacted]"}},
				Fingerprint:  "f00d",
			},
		},
		{name: "no secret", in: in, secrets: []string{""}, want: in},
		{
			name: "empty lists stay empty", in: loganalysis.Result{Summary: "x", Excerpts: []loganalysis.Excerpt{}, FailingTests: []loganalysis.FailingTest{}, Errors: []loganalysis.ErrorLocation{}},
			secrets: []string{token},
			want:    loganalysis.Result{Summary: "x", Excerpts: []loganalysis.Excerpt{}, FailingTests: []loganalysis.FailingTest{}, Errors: []loganalysis.ErrorLocation{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redactResult(tt.in, tt.secrets...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("redactResult (-want +got):\n%s", diff)
			}
		})
	}
	if in.Excerpts[0].Text == "export BUILDKITE_API_TOKEN=[redacted]\nError: token [redacted] rejected" {
		t.Errorf("redactResult changed its input")
	}
}
