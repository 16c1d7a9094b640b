// Package queue holds the message the webhook function and the reconcile
// pass put on the analyze queue (SQS, or the durable queue of
// `kitefix serve`), and its strict decoder. It knows nothing of where the
// message travels.
//
// The message is a contract with other tools: its JSON field names are
// fixed.
//
//	{"kind": "job|build", "tenant_id": "...", "org": "acme", "pipeline": "app",
//	 "build_number": 42, "build_id": "uuid", "job_id": "uuid or empty for build",
//	 "reason": "webhook|reconcile", "queued_at": "RFC 3339"}
package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Kind says what a message asks the analyze function to do.
type Kind string

// The kinds of message.
const (
	// KindJob: analyze one failed job.
	KindJob Kind = "job"
	// KindBuild: expand a failed build into its failed jobs (the analyze
	// function re-reads the build), then analyze each.
	KindBuild Kind = "build"
)

// Reason says what put a message on the queue.
type Reason string

// The reasons a message is queued.
const (
	ReasonWebhook   Reason = "webhook"
	ReasonReconcile Reason = "reconcile"
)

// MaxSize bounds an encoded message. Real ones are a few hundred bytes;
// anything larger is not ours.
const MaxSize = 4 << 10

// Message is one unit of work on the analyze queue.
type Message struct {
	Kind        Kind      `json:"kind"`
	TenantID    string    `json:"tenant_id"`
	Org         string    `json:"org"`
	Pipeline    string    `json:"pipeline"`
	BuildNumber int       `json:"build_number"`
	BuildID     string    `json:"build_id"`
	JobID       string    `json:"job_id"`
	Reason      Reason    `json:"reason"`
	QueuedAt    time.Time `json:"queued_at"`
}

// DedupeKey names the work the message stands for within its tenant:
// "job:<job id>" or "build:<build id>". The webhook's dedupe record and the
// SQS deduplication id are built from it.
func (m Message) DedupeKey() string {
	if m.Kind == KindBuild {
		return "build:" + m.BuildID
	}
	return "job:" + m.JobID
}

// Validate reports the first field that makes m unusable.
func (m Message) Validate() error {
	switch {
	case m.Kind != KindJob && m.Kind != KindBuild:
		return fmt.Errorf("kind %q: want job or build", m.Kind)
	case m.TenantID == "":
		return errors.New("tenant_id is empty")
	case m.Org == "" || m.Pipeline == "":
		return errors.New("org and pipeline are required")
	case m.BuildNumber <= 0:
		return fmt.Errorf("build_number %d: want a positive number", m.BuildNumber)
	case m.Kind == KindJob && m.JobID == "":
		return errors.New("job_id is required for a job message")
	case m.Kind == KindBuild && m.JobID != "":
		return errors.New("job_id must be empty for a build message")
	case m.Reason != ReasonWebhook && m.Reason != ReasonReconcile:
		return fmt.Errorf("reason %q: want webhook or reconcile", m.Reason)
	}
	return nil
}

// Encode validates m and returns its JSON.
func Encode(m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("encode queue message: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode queue message: %w", err)
	}
	return b, nil
}

// Decode parses one message strictly: one JSON object, no unknown fields,
// nothing after it, and a valid message. An error here means the message
// can never be processed (a poison message).
func Decode(b []byte) (Message, error) {
	if len(b) > MaxSize {
		return Message{}, fmt.Errorf("decode queue message: %d bytes, more than %d", len(b), MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("decode queue message: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Message{}, errors.New("decode queue message: data after the object")
	}
	if err := m.Validate(); err != nil {
		return Message{}, fmt.Errorf("decode queue message: %w", err)
	}
	return m, nil
}
