package loganalysis

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCIStructure(t *testing.T) {
	type got struct {
		Kind   lineKind
		Text   string
		Status int
		OK     bool
	}
	tests := []struct {
		in   string
		want got
	}{
		{"##[group]Run go test ./...", got{kindHeader, "Run go test ./...", 0, false}},
		{"##[endgroup]", got{kindNoise, "", 0, false}},
		{"##[error]Process completed with exit code 2.", got{kindExit, "", 2, true}},
		{"##[error]Something broke", got{kindText, "", 0, false}},
		{"ERROR: Job failed: exit code 1", got{kindExit, "", 1, true}},
		{"ERROR: Job failed: command terminated with exit code 137", got{kindExit, "", 137, true}},
		{"ERROR: Job failed: execution took longer than 1h0m0s seconds", got{kindAgent, "", 0, false}},
		{"ERROR: Job failed (system failure): prepare environment", got{kindAgent, "", 0, false}},
	}
	for _, tt := range tests {
		k, text, st, ok := structure([]byte(tt.in))
		if diff := cmp.Diff(tt.want, got{k, string(text), st, ok}); diff != "" {
			t.Errorf("structure(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestGroupCommand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"##[group]Run go test ./...", "go test ./..."},
		{"##[group]Run actions/checkout@v4", "actions/checkout@v4"},
		{"##[group]Operating System", ""},
		{"--- :go: Test", ""},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, string(groupCommand([]byte(tt.in)))); diff != "" {
			t.Errorf("groupCommand(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestGitlabSection(t *testing.T) {
	type got struct {
		Start bool
		Name  string
		Rest  string
		OK    bool
	}
	tests := []struct {
		in   string
		want got
	}{
		{"section_start:1763632800:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting\x1b[0;m",
			got{true, "step_script", "\r\x1b[0K\x1b[0K\x1b[36;1mExecuting\x1b[0;m", true}},
		{"\x1b[0Ksection_end:1763632815:step_script\r\x1b[0K", got{false, "step_script", "\r\x1b[0K", true}},
		{"section_start:1:build[collapsed=true]\r\x1b[0KBuild", got{true, "build", "\r\x1b[0KBuild", true}},
		{"section_start:x:build", got{}},
		{"section_start:1:", got{}},
		{"sections are fine", got{}},
		{"\x1b[32;1m$ npm ci\x1b[0;m", got{}},
	}
	for _, tt := range tests {
		start, name, rest, ok := gitlabSection([]byte(tt.in))
		if diff := cmp.Diff(tt.want, got{start, string(name), string(rest), ok}); diff != "" {
			t.Errorf("gitlabSection(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestAnnotation(t *testing.T) {
	type got struct {
		E      ErrorLocation
		HasLoc bool
		Level  int
	}
	tests := []struct {
		in   string
		want got
	}{
		{"::error file=src/a.ts,line=14,col=9::Type 'string' is not assignable",
			got{ErrorLocation{File: "src/a.ts", Line: 14, Column: 9, Message: "Type 'string' is not assignable"}, true, 2}},
		{"::error file=app.py,line=3,endLine=4,title=Lint::E501 line too long",
			got{ErrorLocation{File: "app.py", Line: 3, Message: "E501 line too long"}, true, 2}},
		{"::error::Deployment failed", got{ErrorLocation{Message: "Deployment failed"}, false, 2}},
		{"##[error]src/a.ts(14,9): Type 'string' is not assignable",
			got{ErrorLocation{File: "src/a.ts", Line: 14, Column: 9, Message: "Type 'string' is not assignable"}, true, 2}},
		{"##[error]main.go:3:7: undefined: x",
			got{ErrorLocation{File: "main.go", Line: 3, Column: 7, Message: "undefined: x"}, true, 2}},
		{"##[error]The operation was canceled.", got{ErrorLocation{Message: "The operation was canceled."}, false, 2}},
		{"##[warning]Node.js 16 actions are deprecated.", got{Level: 1}},
		{"::warning file=a.go,line=1::unused", got{Level: 1}},
		{"::notice::done", got{}},
		{"# comment", got{}},
	}
	for _, tt := range tests {
		e, hasLoc, level := annotation([]byte(tt.in))
		if diff := cmp.Diff(tt.want, got{e, hasLoc, level}); diff != "" {
			t.Errorf("annotation(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestStripAnnotation(t *testing.T) {
	tests := []struct{ in, want string }{
		{"##[error]Something broke", "Something broke"},
		{"##[warning]Careful", "Careful"},
		{"::error file=a.ts,line=1::Bad type", "Bad type"},
		{"::error::Bad", "Bad"},
		{"plain line", "plain line"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, string(stripAnnotation([]byte(tt.in)))); diff != "" {
			t.Errorf("stripAnnotation(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// reLeadingTimestamp matches a timestamp at the start of an excerpt line.
var reLeadingTimestamp = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)

// TestCIFixtures checks what TestFixtures does not for the GitHub Actions
// and GitLab CI logs: the summary, the command, and that excerpts show
// neither timestamps nor section markers.
func TestCIFixtures(t *testing.T) {
	tests := []struct {
		name, summary, command string
	}{
		{"gha_go_test", "1 failing test(s): TestParseQuantity (in go test ./...)", "go test ./..."},
		{"gha_tsc", "src/chart.ts:14: error TS2322: Type 'string' is not assignable to type 'number'. (in npx tsc --noEmit)", "npx tsc --noEmit"},
		{"gitlab_npm", "npm error 404 Not Found - GET https://registry.npmjs.org/@kitefix%2fwidgets - Not found (in npm ci)", "npm ci"},
		{"gitlab_timeout", "The job timed out: Job failed: execution took longer than 1h0m0s seconds (in python -m pytest tests/integration)",
			"python -m pytest tests/integration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tt.name + ".log")
			if err != nil {
				t.Fatal(err)
			}
			res, err := Analyze(context.Background(), strings.NewReader(string(data)), Options{})
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if diff := cmp.Diff([2]string{tt.summary, tt.command}, [2]string{res.Summary, res.Command}); diff != "" {
				t.Errorf("summary and command (-want +got):\n%s", diff)
			}
			for _, e := range res.Excerpts {
				if reLeadingTimestamp.MatchString(e.Text) || strings.Contains(e.Text, "section_") {
					t.Errorf("excerpt %d-%d shows a timestamp or section marker:\n%s", e.StartLine, e.EndLine, e.Text)
				}
			}
		})
	}
}
