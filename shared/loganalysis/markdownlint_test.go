package loganalysis

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMarkdownlintFindings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want ErrorLocation
		cat  int
		ok   bool
	}{
		{"bad.md: 3: MD010/no-hard-tabs Hard tabs [Column: 19]",
			ErrorLocation{File: "bad.md", Line: 3, Message: "MD010/no-hard-tabs Hard tabs [Column: 19]"}, voteLint, true},
		{"docs/setup.md:12:81 MD013/line-length Line length [Expected: 80; Actual: 96]",
			ErrorLocation{File: "docs/setup.md", Line: 12, Column: 81, Message: "MD013/line-length Line length [Expected: 80; Actual: 96]"}, voteLint, true},
		{"README.md:1 MD041/first-line-heading/first-line-h1 First line in a file should be a top-level heading",
			ErrorLocation{File: "README.md", Line: 1, Message: "MD041/first-line-heading/first-line-h1 First line in a file should be a top-level heading"}, voteLint, true},
		{"Built 12 pages: 3 MD files", ErrorLocation{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			t.Parallel()
			var s ruleState
			got, cat, ok := s.diagnostic(1, []byte(tt.line), []byte(tt.line))
			if diff := cmp.Diff(tt.want, got); diff != "" || cat != tt.cat || ok != tt.ok {
				t.Errorf("diagnostic: category %d, error %v, want %d, %v; location (-want +got):\n%s", cat, ok, tt.cat, tt.ok, diff)
			}
		})
	}
}
