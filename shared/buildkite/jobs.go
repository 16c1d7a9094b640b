package buildkite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Job is one job of a build. Waiter and block jobs carry little more than
// ID, Type and State.
type Job struct {
	ID                 string       `json:"id"`
	Type               string       `json:"type"` // script, waiter, manual, trigger
	Name               string       `json:"name"`
	Label              string       `json:"label"`
	StepKey            string       `json:"step_key"`
	State              string       `json:"state"`
	Command            string       `json:"command"`
	WebURL             string       `json:"web_url"`
	LogURL             string       `json:"log_url"`
	RawLogURL          string       `json:"raw_log_url"`
	ExitStatus         *int         `json:"exit_status"`
	SoftFailed         bool         `json:"soft_failed"`
	Retried            bool         `json:"retried"`
	RetriedInJobID     string       `json:"retried_in_job_id"`
	RetriesCount       int          `json:"retries_count"`
	RetryType          string       `json:"retry_type"`
	RetrySource        *RetrySource `json:"retry_source"`
	ParallelGroupIndex *int         `json:"parallel_group_index"`
	ParallelGroupTotal *int         `json:"parallel_group_total"`
	CreatedAt          *time.Time   `json:"created_at"`
	ScheduledAt        *time.Time   `json:"scheduled_at"`
	RunnableAt         *time.Time   `json:"runnable_at"`
	StartedAt          *time.Time   `json:"started_at"`
	FinishedAt         *time.Time   `json:"finished_at"`
}

// RetrySource names the job a retry was made from. A job with a
// RetrySource is itself a retry.
type RetrySource struct {
	JobID     string `json:"job_id"`
	RetryType string `json:"retry_type"` // manual or automatic
}

// IsRetry reports whether the job is itself a retry of another job.
func (j Job) IsRetry() bool { return j.RetrySource != nil && j.RetrySource.JobID != "" }

// UnmarshalJSON decodes Buildkite's payload, in either of its time formats
// and with null for absent strings and counts.
func (j *Job) UnmarshalJSON(data []byte) error {
	type plain Job
	w := struct {
		*plain
		RetriedInJobID *string    `json:"retried_in_job_id"`
		RetriesCount   *int       `json:"retries_count"`
		RetryType      *string    `json:"retry_type"`
		CreatedAt      *timestamp `json:"created_at"`
		ScheduledAt    *timestamp `json:"scheduled_at"`
		RunnableAt     *timestamp `json:"runnable_at"`
		StartedAt      *timestamp `json:"started_at"`
		FinishedAt     *timestamp `json:"finished_at"`
	}{plain: (*plain)(j)}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	j.RetriedInJobID, j.RetriesCount, j.RetryType = deref(w.RetriedInJobID), deref(w.RetriesCount), deref(w.RetryType)
	j.CreatedAt, j.ScheduledAt, j.RunnableAt = w.CreatedAt.ptr(), w.ScheduledAt.ptr(), w.RunnableAt.ptr()
	j.StartedAt, j.FinishedAt = w.StartedAt.ptr(), w.FinishedAt.ptr()
	return nil
}

var _ json.Unmarshaler = (*Job)(nil)

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// jobPath is the API path of a job.
func jobPath(org, pipeline string, number int, jobID string) (string, error) {
	p, err := buildPath(org, pipeline, number)
	if err != nil {
		return "", err
	}
	if jobID == "" {
		return "", fmt.Errorf("buildkite: need a job id")
	}
	return p + "/jobs/" + seg(jobID), nil
}

// RetryJob retries a failed or timed-out job and returns the new job
// (write_builds). Buildkite retries each job id once: retrying it again
// fails, and the new job must be retried instead.
func (c *Client) RetryJob(ctx context.Context, org, pipeline string, number int, jobID string) (Job, error) {
	path, err := jobPath(org, pipeline, number, jobID)
	if err != nil {
		return Job{}, fmt.Errorf("retry job: %w", err)
	}
	r, err := c.newRequest(http.MethodPut, path+"/retry", nil)
	if err != nil {
		return Job{}, fmt.Errorf("retry job: %w", err)
	}
	var j Job
	if _, err := c.doJSON(ctx, r, &j); err != nil {
		return Job{}, fmt.Errorf("retry job: %w", err)
	}
	return j, nil
}
