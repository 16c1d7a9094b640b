package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The events kitefix asks Buildkite to send, and the ones it reads.
const (
	EventPing          = "ping"
	EventBuildFinished = "build.finished"
	EventBuildFailing  = "build.failing"
	EventJobFinished   = "job.finished"
)

// Event is one webhook payload. Which fields are set depends on the event:
// ping carries service and organization; build.* carry build and pipeline;
// job.* carry job, build and pipeline. All carry sender.
type Event struct {
	Event        string        `json:"event"`
	Service      *Service      `json:"service,omitempty"`
	Organization *Organization `json:"organization,omitempty"`
	Job          *Job          `json:"job,omitempty"`
	Build        *Build        `json:"build,omitempty"`
	Pipeline     *Pipeline     `json:"pipeline,omitempty"`
	Sender       *Sender       `json:"sender,omitempty"`
}

// Service is the notification service a ping describes.
type Service struct {
	ID       string          `json:"id"`
	Provider string          `json:"provider"`
	Settings ServiceSettings `json:"settings"`
}

// ServiceSettings are the service's settings.
type ServiceSettings struct {
	URL string `json:"url"`
}

// Organization is a Buildkite organization, as a ping carries it.
type Organization struct {
	ID           string     `json:"id"`
	GraphQLID    string     `json:"graphql_id"`
	URL          string     `json:"url"`
	WebURL       string     `json:"web_url"`
	Name         string     `json:"name"`
	Slug         string     `json:"slug"`
	AgentsURL    string     `json:"agents_url"`
	EmojisURL    string     `json:"emojis_url"`
	PipelinesURL string     `json:"pipelines_url"`
	CreatedAt    *time.Time `json:"created_at"`
}

// Job is a job of a build.
type Job struct {
	ID                 string       `json:"id"`
	GraphQLID          string       `json:"graphql_id"`
	Type               string       `json:"type"`
	Name               *string      `json:"name"`
	StepKey            *string      `json:"step_key"`
	State              string       `json:"state"`
	BuildURL           string       `json:"build_url"`
	WebURL             string       `json:"web_url"`
	LogURL             string       `json:"log_url"`
	RawLogURL          string       `json:"raw_log_url"`
	Command            *string      `json:"command"`
	SoftFailed         bool         `json:"soft_failed"`
	ExitStatus         *int         `json:"exit_status"`
	AgentQueryRules    []string     `json:"agent_query_rules"`
	Agent              *Agent       `json:"agent"`
	Async              *bool        `json:"async,omitempty"`
	CreatedAt          *time.Time   `json:"created_at"`
	ScheduledAt        *time.Time   `json:"scheduled_at"`
	RunnableAt         *time.Time   `json:"runnable_at"`
	StartedAt          *time.Time   `json:"started_at"`
	FinishedAt         *time.Time   `json:"finished_at"`
	Retried            bool         `json:"retried"`
	RetriedInJobID     *string      `json:"retried_in_job_id"`
	RetriesCount       *int         `json:"retries_count"`
	RetrySource        *RetrySource `json:"retry_source"`
	RetryType          *string      `json:"retry_type"`
	ParallelGroupIndex *int         `json:"parallel_group_index"`
	ParallelGroupTotal *int         `json:"parallel_group_total"`
}

// RetrySource names the job a retry was made from.
type RetrySource struct {
	JobID     string `json:"job_id"`
	RetryType string `json:"retry_type"`
}

// Agent ran a job.
type Agent struct {
	ID              string     `json:"id"`
	GraphQLID       string     `json:"graphql_id"`
	URL             string     `json:"url"`
	WebURL          string     `json:"web_url"`
	Name            string     `json:"name"`
	ConnectionState string     `json:"connection_state"`
	Hostname        string     `json:"hostname"`
	IPAddress       string     `json:"ip_address"`
	UserAgent       string     `json:"user_agent"`
	Version         string     `json:"version"`
	MetaData        []string   `json:"meta_data"`
	CreatedAt       *time.Time `json:"created_at"`
}

// Build is a build of a pipeline. Webhook payloads leave out its jobs.
type Build struct {
	ID           string            `json:"id"`
	GraphQLID    string            `json:"graphql_id"`
	URL          string            `json:"url"`
	WebURL       string            `json:"web_url"`
	Number       int               `json:"number"`
	State        string            `json:"state"`
	Blocked      bool              `json:"blocked"`
	CancelReason *string           `json:"cancel_reason"`
	Message      string            `json:"message"`
	Commit       string            `json:"commit"`
	Branch       string            `json:"branch"`
	Tag          *string           `json:"tag"`
	Env          map[string]any    `json:"env,omitempty"`
	Source       string            `json:"source"`
	Creator      *Creator          `json:"creator"`
	CreatedAt    *time.Time        `json:"created_at"`
	ScheduledAt  *time.Time        `json:"scheduled_at"`
	StartedAt    *time.Time        `json:"started_at"`
	FinishedAt   *time.Time        `json:"finished_at"`
	MetaData     map[string]string `json:"meta_data"`
	PullRequest  *PullRequest      `json:"pull_request"`
	RebuiltFrom  *RebuiltFrom      `json:"rebuilt_from,omitempty"`
}

// Creator is the person who made a build.
type Creator struct {
	ID        string     `json:"id"`
	GraphQLID string     `json:"graphql_id"`
	Name      string     `json:"name"`
	Email     string     `json:"email"`
	AvatarURL string     `json:"avatar_url"`
	CreatedAt *time.Time `json:"created_at"`
}

// PullRequest is the pull request a build runs for.
type PullRequest struct {
	ID         string `json:"id"`
	Base       string `json:"base"`
	Repository string `json:"repository"`
}

// RebuiltFrom names the build a rebuild copies.
type RebuiltFrom struct {
	ID     string `json:"id"`
	Number int    `json:"number"`
	URL    string `json:"url"`
}

// Pipeline is a build's pipeline.
type Pipeline struct {
	ID            string     `json:"id"`
	GraphQLID     string     `json:"graphql_id"`
	URL           string     `json:"url"`
	WebURL        string     `json:"web_url"`
	Name          string     `json:"name"`
	Description   *string    `json:"description,omitempty"`
	Slug          string     `json:"slug"`
	Repository    string     `json:"repository"`
	DefaultBranch string     `json:"default_branch"`
	ClusterID     *string    `json:"cluster_id,omitempty"`
	Visibility    string     `json:"visibility,omitempty"`
	Provider      *Provider  `json:"provider"`
	BuildsURL     string     `json:"builds_url"`
	BadgeURL      string     `json:"badge_url,omitempty"`
	CreatedAt     *time.Time `json:"created_at"`
}

// Provider is where a pipeline's source lives.
type Provider struct {
	ID         string         `json:"id"`
	WebhookURL string         `json:"webhook_url"`
	Settings   map[string]any `json:"settings,omitempty"`
}

// Sender is who caused the event.
type Sender struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Decode parses a payload into its typed Event. The body must be one JSON
// object; unknown fields are ignored (Buildkite adds fields over time).
func Decode(body []byte) (Event, error) {
	if t := strings.TrimLeft(string(body), " \t\r\n"); !strings.HasPrefix(t, "{") {
		return Event{}, fmt.Errorf("decode webhook payload: %w: want a JSON object", ErrSyntax)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("decode webhook payload: %w: %w", ErrSyntax, err)
	}
	return ev, nil
}

// Summary returns the fields Decide reads, as Summarize would.
func (ev Event) Summary() Summary {
	s := Summary{Event: ev.Event}
	if j := ev.Job; j != nil {
		s.Job = JobSummary{ID: j.ID, Type: j.Type, State: j.State, SoftFailed: j.SoftFailed, ExitStatus: j.ExitStatus}
	}
	if b := ev.Build; b != nil {
		s.Build = BuildSummary{ID: b.ID, Number: b.Number, State: b.State, URL: b.URL, WebURL: b.WebURL}
	}
	if p := ev.Pipeline; p != nil {
		s.Pipeline = PipelineSummary{Slug: p.Slug, URL: p.URL}
	}
	return s
}
