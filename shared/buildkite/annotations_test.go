package buildkite

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCreateAnnotation(t *testing.T) {
	const route = "POST /v2/organizations/my-great-org/pipelines/my-pipeline/builds/42/annotations"
	var got map[string]any
	srv, _ := newServer(t, map[string]http.HandlerFunc{
		route: func(w http.ResponseWriter, r *http.Request) {
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
				t.Errorf("decode body: %v", err)
			}
			serveFixture(t, http.StatusCreated, "annotation.json")(w, r)
		},
	})
	a := Annotation{Style: "error", Context: "kitefix", Body: "### kitefix: go test failed", Append: false}
	if err := newTestClient(srv, newFakeClock()).CreateAnnotation(context.Background(), "my-great-org", "my-pipeline", 42, a); err != nil {
		t.Fatalf("CreateAnnotation: %v", err)
	}
	want := map[string]any{"style": "error", "context": "kitefix", "body": "### kitefix: go test failed", "append": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
}

func TestCreateAnnotationRejectsBadBodies(t *testing.T) {
	c := New(testToken, WithBaseURL("http://127.0.0.1:1"), WithLimiter(nil))
	for _, body := range []string{"", strings.Repeat("x", MaxAnnotationBody+1)} {
		if err := c.CreateAnnotation(context.Background(), "o", "p", 1, Annotation{Body: body}); err == nil {
			t.Errorf("CreateAnnotation with a %d-byte body: no error", len(body))
		}
	}
}
