// Package settingsapi serves the settings API over net/http:
// connect a Buildkite token, show and re-verify the connection, disconnect,
// and rotate the webhook secret. The same handler runs behind API Gateway
// (see FromAPIGateway) and in `kitefix serve`.
package settingsapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/kitefix/kitefix/shared/connection"
)

// Connections is the connection lifecycle the API drives.
type Connections interface {
	Status(ctx context.Context, tenant string) (connection.Record, error)
	Connect(ctx context.Context, tenant, token string) (connection.Record, error)
	Verify(ctx context.Context, tenant string) (connection.Record, error)
	Disconnect(ctx context.Context, tenant string) (connection.Record, error)
	RotateWebhookSecret(ctx context.Context, tenant string) (connection.Record, error)
}

var _ Connections = (*connection.Service)(nil)

// maxBody bounds a request body; a token fits many times over.
const maxBody = 16 << 10

// Handler serves the settings API routes.
type Handler struct {
	conns Connections
	log   *slog.Logger
	mux   *http.ServeMux
}

// New returns the API over conns. The tenant of each request comes from its
// context (WithTenant); a request without one gets 401.
func New(conns Connections, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{conns: conns, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("PUT /v1/integrations/buildkite", h.connect)
	h.mux.HandleFunc("GET /v1/integrations/buildkite", h.status)
	h.mux.HandleFunc("DELETE /v1/integrations/buildkite", h.disconnect)
	h.mux.HandleFunc("POST /v1/integrations/buildkite/verify", h.verify)
	h.mux.HandleFunc("POST /v1/integrations/buildkite/webhook-secret", h.rotate)
	return h
}

// ServeHTTP routes the request to its handler; the tenant must already be
// in the request's context.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, pattern := h.mux.Handler(r); pattern == "" {
		noRoute(w, r, h.mux)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// noRoute answers a request no route matches: the mux's 404 or 405 (with its
// Allow header) in the API's error shape, anything else (a redirect to the
// clean path) as the mux gives it.
func noRoute(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	c := &capture{header: http.Header{}}
	mux.ServeHTTP(c, r)
	switch c.status {
	case http.StatusNotFound:
		WriteError(w, connection.CodeNotFound, fmt.Sprintf("There is no %s: the settings API lives under /v1/integrations/buildkite.", r.URL.Path))
	case http.StatusMethodNotAllowed:
		allow := c.header.Get("Allow")
		w.Header().Set("Allow", allow)
		WriteError(w, connection.CodeMethodNotAllowed, fmt.Sprintf("%s does not take %s; it takes %s.", r.URL.Path, r.Method, allow))
	default:
		for k, v := range c.header {
			w.Header()[k] = v
		}
		w.WriteHeader(c.status)
	}
}

// capture keeps the status and headers a handler writes, and drops its body.
type capture struct {
	header http.Header
	status int
}

func (c *capture) Header() http.Header { return c.header }

func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capture) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

// Handle adds another route (such as GET /v1/analyses) to the API, behind the
// same tenant check.
func (h *Handler) Handle(pattern string, handler func(w http.ResponseWriter, r *http.Request, tenant string)) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		tenant, ok := h.tenant(w, r)
		if !ok {
			return
		}
		handler(w, r, tenant)
	})
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, h.conns.Status)
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, h.conns.Verify)
}

func (h *Handler) disconnect(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, h.conns.Disconnect)
}

func (h *Handler) rotate(w http.ResponseWriter, r *http.Request) {
	h.run(w, r, h.conns.RotateWebhookSecret)
}

func (h *Handler) connect(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.tenant(w, r)
	if !ok {
		return
	}
	token, f := decodeToken(w, r)
	if f != nil {
		// Show the record as it is; a storage failure reading it wins.
		rec, err := h.conns.Status(r.Context(), tenant)
		if err == nil {
			err = f
		}
		h.writeResult(w, r, tenant, rec, err)
		return
	}
	rec, err := h.conns.Connect(r.Context(), tenant, token)
	h.writeResult(w, r, tenant, rec, err)
}

func (h *Handler) run(w http.ResponseWriter, r *http.Request, op func(context.Context, string) (connection.Record, error)) {
	tenant, ok := h.tenant(w, r)
	if !ok {
		return
	}
	rec, err := op(r.Context(), tenant)
	h.writeResult(w, r, tenant, rec, err)
}

func (h *Handler) tenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	tenant, ok := TenantFrom(r.Context())
	if !ok || strings.TrimSpace(tenant) == "" || !connection.ValidTenant(tenant) {
		WriteError(w, connection.CodeUnauthorized, "Sign in again: the request carries no tenant.")
		return "", false
	}
	return tenant, true
}
