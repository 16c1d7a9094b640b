package webhook

import (
	"fmt"
	"time"

	"github.com/kitefix/kitefix/shared/queue"
)

// Decision is what a delivery asks of kitefix.
type Decision struct {
	// Queue is true when the delivery names failed work to analyze.
	Queue bool
	// Kind is the message to queue: one failed job, or a failed build the
	// analyze function expands into its failed jobs.
	Kind queue.Kind
	// Why says in a few words why, for the log and the response.
	Why string
}

// Job states that mean the job failed (Buildkite's job states).
var failedJobStates = map[string]bool{"failed": true, "timed_out": true, "timing_out": true}

// Job states that mean nobody needs an analysis: the job was stopped on
// purpose or never ran.
var stoppedJobStates = map[string]bool{
	"canceled": true, "canceling": true, "skipped": true, "expired": true,
	"not_run": true, "blocked": true, "waiting_failed": true, "blocked_failed": true,
}

// Build states of a failed build. build.failing arrives while the build
// still runs; build.finished when it is over.
var failedBuildStates = map[string]bool{"failed": true, "failing": true}

// Decide reads what the delivery of event (the X-Buildkite-Event header)
// with summary s asks for:
//   - job.finished for a command job that failed, timed out, or broke
//     after running with a non-zero exit status (and was not soft-failed):
//     queue that job;
//   - build.finished or build.failing for a build in state failed or
//     failing: queue the build;
//   - anything else (ping, passed, soft-failed, canceled, other events):
//     nothing.
func Decide(event string, s Summary) Decision {
	switch event {
	case EventPing:
		return Decision{Why: "ping"}
	case EventJobFinished:
		return decideJob(s.Job)
	case EventBuildFinished, EventBuildFailing:
		if failedBuildStates[s.Build.State] {
			return Decision{Queue: true, Kind: queue.KindBuild, Why: "build " + s.Build.State}
		}
		return Decision{Why: "build " + orUnknown(s.Build.State)}
	}
	return Decision{Why: "event not used"}
}

func decideJob(j JobSummary) Decision {
	nonZeroExit := j.ExitStatus != nil && *j.ExitStatus != 0
	switch {
	case j.Type != "" && j.Type != "script":
		// Waiters, block steps and triggers have no log of their own.
		return Decision{Why: "not a command job"}
	case j.SoftFailed:
		return Decision{Why: "job soft failed"}
	case stoppedJobStates[j.State]:
		return Decision{Why: "job " + j.State}
	case failedJobStates[j.State], nonZeroExit:
		// A broken job counts only when it ran and exited non-zero; one
		// broken before it ran has no log to read.
		return Decision{Queue: true, Kind: queue.KindJob, Why: "job " + j.State}
	}
	return Decision{Why: "job " + orUnknown(j.State)}
}

func orUnknown(state string) string {
	if state == "" {
		return "in no state"
	}
	return state
}

// Message is the queue message for a Decision that queues, for tenant at
// now. A payload that lacks what the message needs (organization,
// pipeline, build number, ids) is an error: the delivery must not be
// acknowledged as if it had been queued.
func (d Decision) Message(s Summary, tenant string, now time.Time) (queue.Message, error) {
	m := queue.Message{
		Kind:        d.Kind,
		TenantID:    tenant,
		Org:         s.Org(),
		Pipeline:    s.Pipeline.Slug,
		BuildNumber: s.Build.Number,
		BuildID:     s.Build.ID,
		Reason:      queue.ReasonWebhook,
		QueuedAt:    now.UTC(),
	}
	if d.Kind == queue.KindJob {
		m.JobID = s.Job.ID
	}
	if m.BuildID == "" {
		return queue.Message{}, fmt.Errorf("payload has no build id")
	}
	if err := m.Validate(); err != nil {
		return queue.Message{}, fmt.Errorf("payload lacks what the queue message needs: %w", err)
	}
	return m, nil
}
