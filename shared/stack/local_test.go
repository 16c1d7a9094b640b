package stack

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kitefix/kitefix/shared/config"
)

// A webhook URL with a missing or extra path segment gets the webhook
// handler's JSON 404, not the page's plain-text refusal.
func TestLocalHooksPathsAnswerJSON(t *testing.T) {
	t.Parallel()
	cfg, err := config.FromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("page")) })
	l, err := OpenLocal(filepath.Join(t.TempDir(), "data"), cfg, slog.New(slog.DiscardHandler), page)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, path := range []string{"/hooks/", "/hooks/0123456789abcdef0123456789abcdef/extra"} {
		rec := httptest.NewRecorder()
		l.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"event":"ping"}`)))
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusNotFound || body.Error.Code == "" {
			t.Errorf("POST %s: %d %q; want 404 with a JSON error", path, rec.Code, rec.Body.String())
		}
	}
}
