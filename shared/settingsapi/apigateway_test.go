package settingsapi

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// echo reports what the handler saw of the request.
func echo(w http.ResponseWriter, r *http.Request) {
	tenant, _ := TenantFrom(r.Context())
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" tenant="+tenant+" ct="+r.Header.Get("Content-Type")+" body="+string(body))
	w.WriteHeader(http.StatusTeapot)
	_, _ = io.WriteString(w, "ok")
}

func TestFromAPIGateway(t *testing.T) {
	withClaims := func(claims map[string]string) events.APIGatewayV2HTTPRequestContext {
		rc := events.APIGatewayV2HTTPRequestContext{}
		rc.HTTP.Method = "PUT"
		if claims != nil {
			rc.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
			}
		}
		return rc
	}
	tests := []struct {
		name string
		ev   events.APIGatewayV2HTTPRequest
		want string
	}{
		{
			name: "tenant from the claim",
			ev: events.APIGatewayV2HTTPRequest{
				RawPath: "/v1/x", RawQueryString: "limit=2", Body: `{"a":1}`,
				Headers:        map[string]string{"content-type": "application/json", "x-tenant": "spoofed"},
				RequestContext: withClaims(map[string]string{"tenant_id": "acme", "sub": "u1"}),
			},
			want: `PUT /v1/x?limit=2 tenant=acme ct=application/json body={"a":1}`,
		},
		{
			name: "base64 body",
			ev: events.APIGatewayV2HTTPRequest{
				RawPath: "/v1/x", Body: base64.StdEncoding.EncodeToString([]byte("raw")), IsBase64Encoded: true,
				RequestContext: withClaims(map[string]string{"tenant_id": "acme"}),
			},
			want: `PUT /v1/x tenant=acme ct= body=raw`,
		},
		{
			name: "no authorizer: no tenant",
			ev:   events.APIGatewayV2HTTPRequest{RawPath: "/v1/x", RequestContext: withClaims(nil)},
			want: `PUT /v1/x tenant= ct= body=`,
		},
		{
			name: "blank claim: no tenant",
			ev:   events.APIGatewayV2HTTPRequest{RawPath: "/v1/x", RequestContext: withClaims(map[string]string{"tenant_id": " \t "})},
			want: `PUT /v1/x tenant= ct= body=`,
		},
		{
			name: "empty claim: no tenant",
			ev:   events.APIGatewayV2HTTPRequest{RawPath: "/v1/x", RequestContext: withClaims(map[string]string{"tenant_id": ""})},
			want: `PUT /v1/x tenant= ct= body=`,
		},
		{
			name: "other claims only: no tenant",
			ev:   events.APIGatewayV2HTTPRequest{RawPath: "/v1/x", RequestContext: withClaims(map[string]string{"sub": "u1"})},
			want: `PUT /v1/x tenant= ct= body=`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := FromAPIGateway(http.HandlerFunc(echo), "tenant_id")(context.Background(), tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, resp.Headers["X-Seen"]); diff != "" {
				t.Errorf("request seen (-want +got):\n%s", diff)
			}
			if resp.StatusCode != http.StatusTeapot || resp.Body != "ok" {
				t.Errorf("response = %d %q", resp.StatusCode, resp.Body)
			}
		})
	}
}

func TestFromAPIGatewayBadBase64(t *testing.T) {
	ev := events.APIGatewayV2HTTPRequest{RawPath: "/", Body: "%%%", IsBase64Encoded: true}
	resp, err := FromAPIGateway(http.HandlerFunc(echo), "tenant_id")(context.Background(), ev)
	if err != nil || resp.StatusCode != http.StatusBadRequest || resp.Headers["X-Seen"] != "" {
		t.Errorf("bad base64 body = %d %q, %v; want 400 before the handler", resp.StatusCode, resp.Body, err)
	}
}
