package settingsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kitefix/kitefix/shared/connection"
)

// statusOf maps every error code to its HTTP status.
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
	connection.CodeConflict:             http.StatusConflict,
	connection.CodeNotFound:             http.StatusNotFound,
	connection.CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	connection.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	connection.CodeForbidden:            http.StatusForbidden,
}

// errorBody is the body of a request rejected before any record was read.
type errorBody struct {
	State connection.State `json:"state"`
	Error connection.Error `json:"error"`
}

// WriteError answers a request refused before any record was read, in the
// error shape of every other answer, with the status statusOf gives code.
// State is not_connected: nothing was looked up.
func WriteError(w http.ResponseWriter, code connection.Code, message string) {
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, errorBody{
		State: connection.StateNotConnected,
		Error: connection.Error{Code: code, Message: message},
	})
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

// decodeToken reads the {"token": "..."} body of a connect request. The body
// must be one JSON object in valid UTF-8 with nothing after it but
// whitespace, and the token must hold only printable characters: anything
// else is refused before Buildkite is asked.
func decodeToken(w http.ResponseWriter, r *http.Request) (string, *connection.Failure) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", malformed("The request body is larger than 16 KiB; send only {\"token\": \"...\"}.")
		}
		return "", malformed("The request body could not be read; send {\"token\": \"...\"} again.")
	}
	if !utf8.Valid(b) {
		return "", malformed("The request body is not valid UTF-8; send {\"token\": \"...\"} as UTF-8 JSON.")
	}
	var body struct {
		Token *string `json:"token"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&body); err != nil {
		if errors.Is(err, io.EOF) {
			return "", malformed("The request body is empty; send {\"token\": \"...\"}.")
		}
		return "", malformed("The request body is not valid JSON; send {\"token\": \"...\"}.")
	}
	if len(bytes.TrimLeft(b[dec.InputOffset():], jsonSpace)) > 0 {
		return "", malformed("The request body has more after the JSON object; send only {\"token\": \"...\"}.")
	}
	if body.Token == nil || strings.TrimSpace(*body.Token) == "" {
		return "", malformed("The request needs a \"token\": paste a Buildkite API access token.")
	}
	if strings.IndexFunc(strings.TrimSpace(*body.Token), unprintable) >= 0 {
		return "", malformed("The token holds a control or invisible character; paste the Buildkite API access token alone.")
	}
	return *body.Token, nil
}

// jsonSpace is the whitespace JSON allows between and around values.
const jsonSpace = " \t\r\n"

// unprintable reports a rune no Buildkite token holds and an HTTP header
// cannot carry as is: a control character, or one that prints as nothing
// (format characters such as zero-width spaces, unassigned code points).
func unprintable(r rune) bool { return !unicode.IsPrint(r) }

func malformed(msg string) *connection.Failure {
	return &connection.Failure{Code: connection.CodeMalformedRequest, Message: msg}
}
