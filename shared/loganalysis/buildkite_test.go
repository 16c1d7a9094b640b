package loganalysis

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// agentWant is what the analysis of a log ending in a Buildkite agent
// report must show.
type agentWant struct {
	Category   Category
	Summary    string
	Start, End int64 // the first excerpt
	Section    string
	Command    string
	Exit       *int
}

func intp(n int) *int { return &n }

func TestBuildkiteAgentReports(t *testing.T) {
	tests := []struct {
		log  string
		want agentWant
	}{
		{"lost_agent", agentWant{CategoryInfrastructure,
			"The agent was lost (exit -1): Agent lost: the agent stopped sending heartbeats (in buildkite-agent pipeline upload)",
			4, 6, ":pipeline: Upload", "buildkite-agent pipeline upload", intp(-1)}},
		{"bk_cancelled", agentWant{CategoryInfrastructure,
			"The job was cancelled: Received cancellation signal, interrupting (in make integration)",
			17, 20, ":hammer: Build", "make integration", nil}},
		{"bk_cancel_kill", agentWant{CategoryInfrastructure,
			"The job was cancelled (exit 137): Received cancellation signal, interrupting (in bazel test //...)",
			8, 10, ":hammer: Build", "bazel test //...", intp(137)}},
		{"bk_timeout", agentWant{CategoryTimeout,
			"The job timed out: Job timed out after 30m0s (in ./scripts/e2e.sh)",
			8, 11, ":test_tube: End-to-end", "./scripts/e2e.sh", nil}},
		{"bk_executor", agentWant{CategoryInfrastructure,
			`Error setting up job executor: running "agent environment" shell hook: the agent environment hook exited with status 52 (in /etc/buildkite-agent/hooks/environment)`,
			3, 3, "Running agent environment hook", "/etc/buildkite-agent/hooks/environment", intp(52)}},
		{"bk_hook_silent", agentWant{CategoryConfig,
			"The pre-command hook exited with status 3 (in .buildkite/hooks/pre-command)",
			7, 8, "Running local pre-command hook", ".buildkite/hooks/pre-command", intp(3)}},
		{"bk_docker_login", agentWant{CategoryConfig,
			`Error response from daemon: Get "https://registry.acme.dev/v2/": unauthorized: incorrect username or password (in /var/lib/buildkite-agent/plugins/docker-login-buildkite-plugin/hooks/pre-command)`,
			7, 7, "Running plugin docker-login pre-command hook",
			"/var/lib/buildkite-agent/plugins/docker-login-buildkite-plugin/hooks/pre-command", intp(1)}},
		{"bk_checkout", agentWant{CategoryConfig,
			"fatal: repository 'https://github.com/acme/widgets.git/' not found (in git clone -v -- https://github.com/acme/widgets.git .)",
			18, 19, "Preparing working directory", "git clone -v -- https://github.com/acme/widgets.git .", intp(128)}},
		{"buildkite_hook", agentWant{CategoryConfig,
			`error: secret "widgets/deploy-key" not found in vault path secret/ci (in .buildkite/hooks/pre-command)`,
			8, 8, "Running local pre-command hook", ".buildkite/hooks/pre-command", intp(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.log, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.log+".log"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Analyze(context.Background(), f, Options{})
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			got := agentWant{Category: res.Category, Summary: res.Summary, Section: res.Section,
				Command: res.Command, Exit: res.ExitStatus}
			if len(res.Excerpts) > 0 {
				got.Start, got.End = res.Excerpts[0].StartLine, res.Excerpts[0].EndLine
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
