// Package localguard shields a server bound to this machine from the web
// pages the machine's browser opens. Any page can send requests to
// 127.0.0.1; a guarded server answers only requests addressed to it by its
// own address (which defeats DNS rebinding: a rebound name arrives as a
// foreign Host), lets only its own pages change anything (a state-changing
// request from another origin is refused), and takes request bodies of its
// API only as JSON (a cross-site form or text/plain POST cannot send that
// without a preflight the server never grants).
package localguard

import (
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/settingsapi"
)

// Config says whom a guarded server answers.
type Config struct {
	// Addr is the address the server listens on, as its listener reports it:
	// 127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080.
	Addr string
	// WebhookBaseURL is where Buildkite sends webhooks. When it names a host
	// other than Addr (a tunnel to this machine), requests addressed to that
	// host are accepted on WebhookPath, and nowhere else.
	WebhookBaseURL string
	// Log receives one line per refused request (default: discard).
	Log *slog.Logger
}

// Paths the guard treats apart.
const (
	// APIPath prefixes the settings API, whose bodies must be JSON.
	APIPath = "/v1/"
	// WebhookPath prefixes the webhook receiver, the one path a tunnel's
	// host may reach.
	WebhookPath = "/hooks/"
)

// maxEcho bounds how much of a refused Host or Origin a message repeats.
const maxEcho = 100

// guard is the middleware New returns.
type guard struct {
	next     http.Handler
	port     string
	bound    net.IP // nil: bound to every address
	self     string // the address to tell people to use
	hookHost []string
	log      *slog.Logger
}

// New wraps next in the checks of the package doc. It fails when Addr or
// WebhookBaseURL cannot be read.
func New(cfg Config, next http.Handler) (http.Handler, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("read listen address %q: %w", cfg.Addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("read listen address %q: want an IP address and a port", cfg.Addr)
	}
	g := &guard{next: next, port: port, log: cfg.Log, self: net.JoinHostPort(host, port)}
	if !ip.IsUnspecified() {
		g.bound = ip
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		g.self = "localhost:" + port
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if cfg.WebhookBaseURL != "" {
		u, err := url.Parse(cfg.WebhookBaseURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("read webhook base URL: want scheme://host, got %q", cfg.WebhookBaseURL)
		}
		h := strings.ToLower(u.Host)
		g.hookHost = append(g.hookHost, h)
		if u.Port() == "" { // a client may spell the default port out
			switch u.Scheme {
			case "https":
				g.hookHost = append(g.hookHost, h+":443")
			case "http":
				g.hookHost = append(g.hookHost, h+":80")
			}
		}
	}
	return g, nil
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r) {
		g.refuse(w, r, connection.CodeForbidden, fmt.Sprintf(
			"This server answers only at http://%s; the request was addressed to %q. Open http://%s instead.",
			g.self, echo(r.Host), g.self), "host")
		return
	}
	if !safeMethod(r.Method) && !sameOrigin(r) {
		g.refuse(w, r, connection.CodeForbidden, fmt.Sprintf(
			"Only this server's own page may change its settings; the request came from %q. Open http://%s instead.",
			echo(r.Header.Get("Origin")), g.self), "origin")
		return
	}
	if strings.HasPrefix(r.URL.Path, APIPath) && hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
		g.refuse(w, r, connection.CodeUnsupportedMediaType,
			"Send the request body as JSON, with the header Content-Type: application/json.", "content_type")
		return
	}
	g.next.ServeHTTP(w, r)
}

func (g *guard) refuse(w http.ResponseWriter, r *http.Request, code connection.Code, msg, reason string) {
	g.log.WarnContext(r.Context(), "request refused", "reason", reason,
		"method", r.Method, "path", r.URL.Path, "host", echo(r.Host), "origin", echo(r.Header.Get("Origin")))
	settingsapi.WriteError(w, code, msg)
}

// hostAllowed reports whether r is addressed to this server: by the port it
// listens on and by an IP address it listens on, or as localhost when it
// listens on loopback. A name other than localhost is refused, since a page
// can point any name at 127.0.0.1; only the webhook path also answers to
// the webhook base URL's host.
func (g *guard) hostAllowed(r *http.Request) bool {
	h := strings.ToLower(r.Host)
	if strings.HasPrefix(r.URL.Path, WebhookPath) {
		for _, hh := range g.hookHost {
			if h == hh {
				return true
			}
		}
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = strings.Trim(h, "[]"), "80" // no port: the default one
	}
	if port != g.port {
		return false
	}
	if host == "localhost" {
		return g.bound == nil || g.bound.IsLoopback()
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return false
	case g.bound == nil: // every address: any address of this machine
		return true
	case g.bound.IsLoopback():
		return ip.IsLoopback()
	default:
		return ip.Equal(g.bound)
	}
}

// sameOrigin reports whether r comes from a page of the origin it is
// addressed to, or from no page at all (curl, Buildkite). Browsers send
// Origin on every state-changing request, and Sec-Fetch-Site on most.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return strings.EqualFold(origin, "http://"+r.Host)
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// hasBody reports whether r carries a body (ContentLength is -1 when its
// length is unknown).
func hasBody(r *http.Request) bool { return r.ContentLength != 0 }

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// echo is an untrusted header value as a message may repeat it.
func echo(s string) string {
	if len(s) > maxEcho {
		return strings.ToValidUTF8(s[:maxEcho], "") + "…"
	}
	return s
}
