package buildkite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// MaxAnnotationBody is the largest annotation body Buildkite accepts.
const MaxAnnotationBody = 1 << 20

// Annotation is a Markdown note shown on a build's page.
type Annotation struct {
	// Style is success, info, warning or error ("" is Buildkite's default).
	Style string `json:"style,omitempty"`
	// Context names the annotation: one per context per build. Writing the
	// same context again replaces it (or appends, with Append).
	Context string `json:"context,omitempty"`
	// Body is the Markdown, at most MaxAnnotationBody bytes.
	Body string `json:"body"`
	// Append adds Body to an existing annotation of the same Context.
	Append bool `json:"append"`
}

// CreateAnnotation adds (or replaces, by Context) an annotation on a build
// (write_builds). A replacing write is retried like a read; an appending
// write only on 429, since repeating it could add Body twice.
func (c *Client) CreateAnnotation(ctx context.Context, org, pipeline string, number int, a Annotation) error {
	if err := c.createAnnotation(ctx, org, pipeline, number, a); err != nil {
		return fmt.Errorf("create annotation: %w", err)
	}
	return nil
}

func (c *Client) createAnnotation(ctx context.Context, org, pipeline string, number int, a Annotation) error {
	switch {
	case a.Body == "":
		return errors.New("buildkite: annotation body is empty")
	case len(a.Body) > MaxAnnotationBody:
		return fmt.Errorf("buildkite: annotation body is %d bytes, more than Buildkite's %d", len(a.Body), MaxAnnotationBody)
	}
	path, err := buildPath(org, pipeline, number)
	if err != nil {
		return err
	}
	r, err := c.newRequest(http.MethodPost, path+"/annotations", nil)
	if err != nil {
		return err
	}
	if r.body, err = json.Marshal(a); err != nil {
		return fmt.Errorf("encode annotation: %w", err)
	}
	if a.Append {
		r.policy = retryRateLimitOnly
	}
	_, err = c.doJSON(ctx, r, nil)
	return err
}
