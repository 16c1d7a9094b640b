package connection

import (
	"context"
	"testing"
	"time"
)

// TestCheckTokenRefusesUnprintable: a token with a character no token holds
// is malformed_request, and Buildkite is never asked (an HTTP header could
// not even carry most of them).
func TestCheckTokenRefusesUnprintable(t *testing.T) {
	t.Parallel()
	const tok = "bkua_0123456789abcdef0123456789abcdef01234567"
	for _, token := range []string{
		tok[:9] + "\x00" + tok[9:],
		tok + "\x7f",
		"\x1b[31m" + tok,
		tok[:9] + "\u200b" + tok[9:],
		"\ufeff" + tok,
		tok + "\u202e",
		tok[:9] + "\u00a0" + tok[9:],
	} {
		newBK := func(string) Buildkite {
			t.Errorf("token %q: Buildkite was asked", token)
			return nil
		}
		_, f := CheckToken(context.Background(), token, newBK, time.Now())
		if f == nil || f.Code != CodeMalformedRequest {
			t.Errorf("token %q: failure %v, want %s", token, f, CodeMalformedRequest)
		}
	}
}
