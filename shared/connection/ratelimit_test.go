package connection

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
)

// spentLimiter has no request slot left.
type spentLimiter struct{}

func (spentLimiter) Wait(context.Context) error { return errors.New("no slot before the deadline") }

// A request the client-side limiter holds back never reaches Buildkite: the
// failure must not say Buildkite rate limited the token.
func TestClientSideLimitIsNotBlamedOnBuildkite(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	newBK := func(token string) Buildkite {
		return buildkite.New(token, buildkite.WithBaseURL(srv.URL), buildkite.WithLimiter(spentLimiter{}))
	}
	_, f := CheckToken(context.Background(), "bkua_0123456789abcdef0123456789abcdef01234567", newBK, time.Now())
	if f == nil {
		t.Fatal("CheckToken with no request slot: no failure")
	}
	if f.Code != CodeRateLimited {
		t.Errorf("code %q, want %q", f.Code, CodeRateLimited)
	}
	if strings.Contains(f.Message, "Buildkite is rate limiting") || !strings.Contains(f.Message, "kitefix keeps each token") {
		t.Errorf("message %q: want it to say kitefix held the request back", f.Message)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("Buildkite was asked %d times", n)
	}
}
