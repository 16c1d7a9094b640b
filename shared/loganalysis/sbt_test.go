package loganalysis

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestRunTally(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want bool
	}{
		{"[error] Failed: Total 735, Failed 2, Errors 0, Passed 733, Ignored 162", true},
		{"[error] Error: Total 3, Failed 0, Errors 1, Passed 2", true},
		{"Failed: Total 87, Failed 1, Errors 0, Passed 86", true},
		{"[info] Passed: Total 65, Failed 0, Errors 0, Passed 65, Ignored 1", false},
		{"[error] Failed: could not connect to the store", false},
	}
	for _, tt := range tests {
		if got := runTally([]byte(tt.line)); got != tt.want {
			t.Errorf("runTally(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// TestSbtSummaryIsNoExcerpt checks that sbt's closing summary, which only
// counts and lists the failures reported above it, is not shown as one.
func TestSbtSummaryIsNoExcerpt(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"testdata/ecosystems/jul_records.log"} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Analyze(context.Background(), f, Options{})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range res.Excerpts {
			if strings.Contains(x.Text, "Failed: Total") {
				t.Errorf("%s: an excerpt holds sbt's summary:\n%s", name, x.Text)
			}
		}
	}
}
