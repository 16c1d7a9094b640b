package ingest

import (
	"encoding/json"
	"net/http"
)

// outcome names what became of a delivery; the log line and the response
// say it.
type outcome string

// The outcomes of a delivery.
const (
	outcomeQueued           outcome = "queued"
	outcomeDuplicate        outcome = "duplicate"
	outcomeIgnored          outcome = "ignored"
	outcomePing             outcome = "ping"
	outcomeUnauthorized     outcome = "unauthorized"
	outcomeMalformed        outcome = "malformed_request"
	outcomeTooLarge         outcome = "payload_too_large"
	outcomeUnavailable      outcome = "storage_unavailable"
	outcomeNotFound         outcome = "not_found"
	outcomeMethodNotAllowed outcome = "method_not_allowed"
)

// statusOf is the one table from outcome to HTTP status.
var statusOf = map[outcome]int{
	outcomeQueued:           http.StatusAccepted,
	outcomeDuplicate:        http.StatusOK,
	outcomeIgnored:          http.StatusOK,
	outcomePing:             http.StatusOK,
	outcomeUnauthorized:     http.StatusUnauthorized,
	outcomeMalformed:        http.StatusBadRequest,
	outcomeTooLarge:         http.StatusRequestEntityTooLarge,
	outcomeUnavailable:      http.StatusServiceUnavailable,
	outcomeNotFound:         http.StatusNotFound,
	outcomeMethodNotAllowed: http.StatusMethodNotAllowed,
}

// errorMessages say what to do about each refusal. The 401 message is the
// same whatever check failed: only the log says which.
var errorMessages = map[outcome]string{
	outcomeUnauthorized:     "The delivery could not be authenticated. Check that Buildkite's webhook URL is the one kitefix shows and that its signature secret (or token) is the current webhook secret.",
	outcomeMalformed:        "The delivery is not a Buildkite webhook kitefix can read.",
	outcomeTooLarge:         "The delivery is larger than 1 MiB.",
	outcomeUnavailable:      "kitefix could not store the delivery; send it again.",
	outcomeNotFound:         "Webhooks are delivered to /hooks/<webhook id>.",
	outcomeMethodNotAllowed: "Webhooks are delivered with POST.",
}

// errorBody is the one shape of every refusal.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Reason adds what was wrong with a malformed delivery. It never
	// holds a secret or a signature.
	Reason string `json:"reason,omitempty"`
}

// okBody is the answer to a delivery that was accepted.
type okBody struct {
	Outcome string `json:"outcome"`
	Kind    string `json:"kind,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// response is d's answer.
func (d *delivery) response() Response {
	status, ok := statusOf[d.outcome]
	if !ok {
		status = http.StatusInternalServerError
	}
	var v any
	if status < 400 {
		b := okBody{Outcome: string(d.outcome), Kind: string(d.kind)}
		if d.outcome == outcomeIgnored {
			b.Reason = d.reason
		}
		v = b
	} else {
		e := errorDetail{Code: string(d.outcome), Message: errorMessages[d.outcome]}
		if d.outcome == outcomeMalformed {
			e.Reason = d.reason
		}
		v = errorBody{Error: e}
	}
	body, err := json.Marshal(v)
	if err != nil {
		// Strings always marshal.
		panic(err)
	}
	return Response{Status: status, Body: body}
}
