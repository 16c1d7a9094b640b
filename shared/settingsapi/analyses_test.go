package settingsapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/storage"
)

// fakeAnalyses pages over recs (newest first); the cursor is an index.
type fakeAnalyses struct {
	recs      []analysis.Record
	err       error
	gotTenant string
}

func (f *fakeAnalyses) ListAnalyses(_ context.Context, tenant string, limit int, cursor string) ([]analysis.Record, string, error) {
	f.gotTenant = tenant
	if f.err != nil {
		return nil, "", f.err
	}
	start := 0
	if cursor != "" {
		if cursor[0] != 'c' {
			return nil, "", analysis.ErrBadCursor
		}
		start = int(cursor[1] - '0')
	}
	end := min(start+limit, len(f.recs))
	next := ""
	if end < len(f.recs) {
		next = "c" + string(rune('0'+end))
	}
	return f.recs[start:end], next, nil
}

func TestListAnalyses(t *testing.T) {
	t.Parallel()
	f := &fakeAnalyses{}
	for i := range 3 {
		f.recs = append(f.recs, analysis.Record{ID: "job:" + string(rune('a'+i)), TenantID: "acme", JobID: string(rune('a' + i)),
			State: analysis.StateAnalyzed, AnalyzedAt: time.Date(2026, 1, 1, 0, 0, 3-i, 0, time.UTC)})
	}
	h := New(nil, nil)
	h.ServeAnalyses(f)
	get := func(url string) (int, map[string]any) {
		req := httptest.NewRequest(http.MethodGet, url, nil)
		req = req.WithContext(WithTenant(req.Context(), "acme"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: body %q: %v", url, rec.Body, err)
		}
		if strings.Contains(rec.Body.String(), "tenant_id") {
			t.Errorf("%s: the body shows the tenant id: %s", url, rec.Body)
		}
		return rec.Code, body
	}
	ids := func(body map[string]any) []string {
		var out []string
		for _, a := range body["analyses"].([]any) {
			out = append(out, a.(map[string]any)["job_id"].(string))
		}
		return out
	}

	status, body := get("/v1/analyses?limit=2")
	if status != 200 || body["next_cursor"] != "c2" {
		t.Fatalf("first page: %d %v", status, body)
	}
	if diff := cmp.Diff([]string{"a", "b"}, ids(body)); diff != "" {
		t.Errorf("first page (-want +got):\n%s", diff)
	}
	status, body = get("/v1/analyses?limit=2&cursor=c2")
	if _, has := body["next_cursor"]; status != 200 || has {
		t.Fatalf("last page: %d %v; want no next_cursor", status, body)
	}
	if diff := cmp.Diff([]string{"c"}, ids(body)); diff != "" {
		t.Errorf("last page (-want +got):\n%s", diff)
	}
	if f.gotTenant != "acme" {
		t.Errorf("tenant %q", f.gotTenant)
	}

	for _, tt := range []struct {
		url    string
		status int
		code   string
	}{
		{"/v1/analyses?limit=0", 400, "malformed_request"},
		{"/v1/analyses?limit=101", 400, "malformed_request"},
		{"/v1/analyses?limit=x", 400, "malformed_request"},
		{"/v1/analyses?cursor=zz", 400, "malformed_request"},
	} {
		status, body := get(tt.url)
		code, _ := body["error"].(map[string]any)["code"].(string)
		if status != tt.status || code != tt.code {
			t.Errorf("%s: %d %s; want %d %s", tt.url, status, code, tt.status, tt.code)
		}
	}
	status, body = get("/v1/analyses")
	if status != 200 || len(ids(body)) != 3 {
		t.Errorf("default limit: %d, %d analyses", status, len(ids(body)))
	}

	f.err = errors.Join(storage.ErrUnavailable, errors.New("down"))
	if status, _ := get("/v1/analyses"); status != 503 {
		t.Errorf("storage down: %d, want 503", status)
	}
}
