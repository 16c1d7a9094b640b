package buildkite

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// readCapped reads r whole, failing if it holds more than limit bytes.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read response: larger than %d bytes", limit)
	}
	return b, nil
}

// decodeJSON decodes a JSON answer of at most maxJSONBody bytes.
func decodeJSON(r io.Reader, out any) error {
	b, err := readCapped(r, maxJSONBody)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// errorMessage reads Buildkite's {"message": "..."} from an error answer,
// falling back to the status text.
func errorMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Message string `json:"message"`
	}
	msg := ""
	if json.Unmarshal(b, &body) == nil {
		msg = strings.TrimSpace(body.Message)
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	return msg
}
