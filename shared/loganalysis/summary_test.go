package loganalysis

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStripLinePrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"#8 1.904 error: could not compile `widgets`", "error: could not compile `widgets`"},
		{"#12 [build 3/7] RUN make", "#12 [build 3/7] RUN make"},
		{"2024-05-01T10:00:00.123Z ERROR boom", "ERROR boom"},
		{"2024-05-01T10:00:00+02:00 ERROR boom", "ERROR boom"},
		{"2024-05-01 10:00:00,123 ERROR boom", "ERROR boom"},
		{"[10:00:00] Error: boom", "Error: boom"},
		{"[2024-05-01 10:00:00] Error: boom", "Error: boom"},
		{"#8 1.904 2024-05-01T10:00:00Z panic: boom", "panic: boom"},
		{"10:00 is not a time", "10:00 is not a time"},
		{"12:30:45error", "12:30:45error"},
		{"#8", "#8"},
	}
	for _, tt := range tests {
		if got := string(stripLinePrefix([]byte(tt.in))); got != tt.want {
			t.Errorf("stripLinePrefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSummaryLong(t *testing.T) {
	res := analyzeString(t, "error: "+strings.Repeat("x ", 300)+"\n")
	if len(res.Summary) > 200 || strings.ContainsAny(res.Summary, "\r\n") || !strings.HasSuffix(res.Summary, "…") {
		t.Errorf("summary = %q, want one line of at most 200 bytes, cut with …", res.Summary)
	}
}

func TestSummaryOneLine(t *testing.T) {
	tests := []struct {
		name, log, want string
	}{
		{"BuildKit step prefix", "--- build\n$ docker build .\n#8 1.904 error: failed to solve: boom\n",
			"error: failed to solve: boom (in docker build .)"},
		{"timestamp", "2024-05-01T10:00:00Z starting\n2024-05-01T10:00:01Z FATAL: database is unreachable\n",
			"FATAL: database is unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := analyzeString(t, tt.log)
			if diff := cmp.Diff(tt.want, res.Summary); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
		})
	}
}
