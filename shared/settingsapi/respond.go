package settingsapi

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/kitefix/kitefix/shared/connection"
)

// statusOf maps every error code to its HTTP status (DESIGN 3.1).
var statusOf = map[connection.Code]int{
	connection.CodeMalformedRequest:     http.StatusBadRequest,
	connection.CodeWrongTokenType:       http.StatusUnprocessableEntity,
	connection.CodeInvalidToken:         http.StatusUnprocessableEntity,
	connection.CodeExpiredToken:         http.StatusUnprocessableEntity,
	connection.CodeMissingScopes:        http.StatusUnprocessableEntity,
	connection.CodeNoOrganizationAccess: http.StatusUnprocessableEntity,
	connection.CodeRateLimited:          http.StatusTooManyRequests,
	connection.CodeUnreachable:          http.StatusBadGateway,
	connection.CodeStorageUnavailable:   http.StatusServiceUnavailable,
	connection.CodeUnauthorized:         http.StatusUnauthorized,
	connection.CodeNotConnected:         http.StatusConflict,
}

// errorBody is the body of a request rejected before any record was read.
type errorBody struct {
	State connection.State `json:"state"`
	Error connection.Error `json:"error"`
}

// writeResult writes rec, and err's failure when there is one.
func (h *Handler) writeResult(w http.ResponseWriter, r *http.Request, tenant string, rec connection.Record, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, rec)
		return
	}
	f := connection.AsFailure(err)
	status, ok := statusOf[f.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "request failed", "tenant", tenant, "route", r.Pattern, "code", string(f.Code), "err", err)
	}
	if f.Code == connection.CodeRateLimited && f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
	}
	rec.Error = &connection.Error{Code: f.Code, Message: f.Message}
	if f.Code == connection.CodeMissingScopes {
		rec.MissingScopes = f.MissingScopes
	}
	writeJSON(w, status, rec)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeToken reads the {"token": "..."} body of a connect request.
func decodeToken(w http.ResponseWriter, r *http.Request) (string, *connection.Failure) {
	var body struct {
		Token *string `json:"token"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return "", malformed("The request body is larger than 16 KiB; send only {\"token\": \"...\"}.")
		case errors.Is(err, io.EOF):
			return "", malformed("The request body is empty; send {\"token\": \"...\"}.")
		default:
			return "", malformed("The request body is not valid JSON; send {\"token\": \"...\"}.")
		}
	}
	if dec.More() {
		return "", malformed("The request body holds more than one JSON value; send {\"token\": \"...\"}.")
	}
	if body.Token == nil || strings.TrimSpace(*body.Token) == "" {
		return "", malformed("The request needs a \"token\": paste a Buildkite API access token.")
	}
	return *body.Token, nil
}

func malformed(msg string) *connection.Failure {
	return &connection.Failure{Code: connection.CodeMalformedRequest, Message: msg}
}
