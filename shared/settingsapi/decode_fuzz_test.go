package settingsapi

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kitefix/kitefix/shared/connection"
)

// tokenLike matches what could be a token, or part of one, in a body.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_]{16,}`)

// FuzzDecodeToken: any connect body is read or refused with a
// malformed_request that never repeats a token-like part of the body; a
// token read is printable UTF-8 and not blank.
func FuzzDecodeToken(f *testing.F) {
	f.Add(`{"token":"bkua_0123456789abcdef0123456789abcdef01234567"}`)
	f.Add(` {"token": "  bkua_x  "} ` + "\n")
	f.Add(`{"token":"bkua_\u200bx"}`)
	f.Add(`{"token":null}`)
	f.Add(`{"token":"a"}{"token":"b"}`)
	f.Add(`{"token":"\xff"}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPut, "/v1/integrations/buildkite", strings.NewReader(body))
		token, fail := decodeToken(httptest.NewRecorder(), r)
		if fail != nil {
			if fail.Code != connection.CodeMalformedRequest {
				t.Fatalf("code %s; want malformed_request", fail.Code)
			}
			for _, word := range tokenLike.FindAllString(body, -1) {
				if strings.Contains(fail.Message, word) {
					t.Fatalf("the refusal repeats %q from the body: %q", word, fail.Message)
				}
			}
			return
		}
		trimmed := strings.TrimSpace(token)
		if trimmed == "" || !utf8.ValidString(token) || strings.IndexFunc(trimmed, unprintable) >= 0 {
			t.Fatalf("accepted token %q", token)
		}
		if len(body) > maxBody {
			t.Fatalf("accepted a body of %d bytes", len(body))
		}
	})
}
