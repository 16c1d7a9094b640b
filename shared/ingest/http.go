package ingest

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// hooksPrefix starts every webhook path: /hooks/<webhook id>.
const hooksPrefix = "/hooks/"

// webhookID returns the id in a /hooks/<id> path, or "" and false for any
// other path.
func webhookID(path string) (string, bool) {
	id, ok := strings.CutPrefix(path, hooksPrefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// refuse answers a request that never became a delivery (wrong path or
// method, a body too large to read), with the same log line and shape.
func (h *Handler) refuse(ctx context.Context, o outcome, reason string) Response {
	d := delivery{outcome: o, reason: reason}
	resp := d.response()
	h.log(ctx, &d, resp.Status, 0)
	return resp
}

// ServeHTTP serves POST /hooks/{id} for `kitefix serve`.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp := h.serveHTTP(w, r)
	w.Header().Set("Content-Type", "application/json")
	if resp.Status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

func (h *Handler) serveHTTP(w http.ResponseWriter, r *http.Request) Response {
	ctx := r.Context()
	id := r.PathValue("id")
	if id == "" {
		var ok bool
		if id, ok = webhookID(r.URL.Path); !ok {
			return h.refuse(ctx, outcomeNotFound, "")
		}
	}
	if r.Method != http.MethodPost {
		return h.refuse(ctx, outcomeMethodNotAllowed, "")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return h.refuse(ctx, outcomeTooLarge, "body over 1 MiB")
		}
		return h.refuse(ctx, outcomeMalformed, "read body: "+err.Error())
	}
	return h.Handle(ctx, Request{
		WebhookID: id,
		Event:     r.Header.Get("X-Buildkite-Event"),
		Signature: r.Header.Get("X-Buildkite-Signature"),
		Token:     r.Header.Get("X-Buildkite-Token"),
		Body:      body,
	})
}

// Lambda serves the webhook function URL.
func (h *Handler) Lambda(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	resp := h.lambda(ctx, req)
	out := events.LambdaFunctionURLResponse{
		StatusCode: resp.Status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(resp.Body),
	}
	if resp.Status == http.StatusMethodNotAllowed {
		out.Headers["Allow"] = http.MethodPost
	}
	return out, nil
}

func (h *Handler) lambda(ctx context.Context, req events.LambdaFunctionURLRequest) Response {
	id, ok := webhookID(req.RawPath)
	if !ok {
		return h.refuse(ctx, outcomeNotFound, "")
	}
	if req.RequestContext.HTTP.Method != http.MethodPost {
		return h.refuse(ctx, outcomeMethodNotAllowed, "")
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(req.Body)) > MaxBody+2 {
			return h.refuse(ctx, outcomeTooLarge, "body over 1 MiB")
		}
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return h.refuse(ctx, outcomeMalformed, "body is not valid base64")
		}
		body = b
	}
	return h.Handle(ctx, Request{
		WebhookID: id,
		Event:     header(req.Headers, "X-Buildkite-Event"),
		Signature: header(req.Headers, "X-Buildkite-Signature"),
		Token:     header(req.Headers, "X-Buildkite-Token"),
		Body:      body,
	})
}

// header looks name up in a function URL's headers, ignoring case (the
// function URL lower-cases names; a test event may not).
func header(headers map[string]string, name string) string {
	if v, ok := headers[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
