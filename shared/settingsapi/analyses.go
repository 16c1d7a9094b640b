package settingsapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/connection"
)

// Page sizes of GET /v1/analyses.
const (
	defaultAnalysesLimit = 20
	maxAnalysesLimit     = 100
)

// Analyses lists a tenant's stored analyses.
type Analyses interface {
	ListAnalyses(ctx context.Context, tenant string, limit int, cursor string) ([]analysis.Record, string, error)
}

// analysesPage is the body of GET /v1/analyses.
type analysesPage struct {
	Analyses   []analysis.Record `json:"analyses"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// ServeAnalyses adds GET /v1/analyses?limit=N&cursor=C over a: the tenant's
// analyses, newest first, limit 1–100 (default 20); next_cursor names the
// next page and is absent on the last.
func (h *Handler) ServeAnalyses(a Analyses) {
	h.Handle("GET /v1/analyses", func(w http.ResponseWriter, r *http.Request, tenant string) {
		q := r.URL.Query()
		limit := defaultAnalysesLimit
		if v := q.Get("limit"); v != "" || q.Has("limit") {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxAnalysesLimit {
				WriteError(w, connection.CodeMalformedRequest, "limit must be a whole number from 1 to 100.")
				return
			}
			limit = n
		}
		recs, next, err := a.ListAnalyses(r.Context(), tenant, limit, q.Get("cursor"))
		switch {
		case errors.Is(err, analysis.ErrBadCursor):
			WriteError(w, connection.CodeMalformedRequest, "cursor is not one this API gave out: use next_cursor from the previous page.")
			return
		case err != nil:
			h.log.ErrorContext(r.Context(), "list analyses", "tenant", tenant, "err", err)
			WriteError(w, connection.CodeStorageUnavailable, "The analyses could not be read; try again shortly.")
			return
		}
		if recs == nil {
			recs = []analysis.Record{}
		}
		writeJSON(w, http.StatusOK, analysesPage{Analyses: recs, NextCursor: next})
	})
}
