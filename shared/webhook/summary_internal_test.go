package webhook

import (
	"strings"
	"testing"
)

// TestSummarizeSaysWhereJSONBreaks: an object or array cut short, or with
// something other than a comma or its closing bracket after a member, is
// refused with an error that says which.
func TestSummarizeSaysWhereJSONBreaks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{in: `{"event":"ping"`, want: "unterminated object"},
		{in: `{"event":"ping"]`, want: "want ',' or '}' in an object"},
		{in: `{"x":[1,2`, want: "unterminated array"},
		{in: `{"x":[1,2}`, want: "want ',' or ']' in an array"},
		{in: `{"x":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + "}", want: "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			_, err := Summarize([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Summarize(%.40s) error %v, want one saying %q", tt.in, err, tt.want)
			}
		})
	}
}
