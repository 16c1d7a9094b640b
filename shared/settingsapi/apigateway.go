package settingsapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kitefix/kitefix/shared/connection"
)

// APIGatewayHandler is a Lambda handler for HTTP API (payload 2.0) events.
type APIGatewayHandler func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// FromAPIGateway serves h behind an API Gateway HTTP API with a JWT
// authorizer: the tenant is the verified claim named tenantClaim, never a
// header or the body.
func FromAPIGateway(h http.Handler, tenantClaim string) APIGatewayHandler {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req, err := requestOf(ctx, ev)
		if err != nil {
			rec := newRecorder()
			WriteError(rec, connection.CodeMalformedRequest, "The request could not be read: "+err.Error())
			return rec.response(), nil
		}
		// A blank claim is no tenant (401), never a tenant named "  ".
		if tenant := claim(ev, tenantClaim); strings.TrimSpace(tenant) != "" {
			req = req.WithContext(WithTenant(req.Context(), tenant))
		}
		rec := newRecorder()
		h.ServeHTTP(rec, req)
		return rec.response(), nil
	}
}

func claim(ev events.APIGatewayV2HTTPRequest, name string) string {
	if ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.JWT == nil {
		return ""
	}
	return ev.RequestContext.Authorizer.JWT.Claims[name]
}

func requestOf(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	body := ev.Body
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, fmt.Errorf("decode base64 body: %w", err)
		}
		body = string(b)
	}
	path := ev.RawPath
	if path == "" {
		path = "/"
	}
	target := path
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	return req, nil
}

// recorder collects a response in memory for the Lambda result.
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func (r *recorder) response() events.APIGatewayV2HTTPResponse {
	r.WriteHeader(http.StatusOK)
	headers := make(map[string]string, len(r.header))
	for k, v := range r.header {
		headers[k] = strings.Join(v, ",")
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: r.status, Headers: headers, Body: r.body.String()}
}
