package buildkite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// timestamp decodes the time formats Buildkite uses: ISO 8601 / RFC 3339
// ("2015-05-09T21:05:59.874Z") and "2025-07-23 06:07:42 UTC". JSON null and
// "" decode to the zero time.
type timestamp time.Time

func (t *timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*t = timestamp{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode time: %w", err)
	}
	v, err := parseTime(s)
	if err != nil {
		return err
	}
	*t = timestamp(v)
	return nil
}

// ptr returns nil for the zero time, else a pointer to it.
func (t *timestamp) ptr() *time.Time {
	if t == nil || time.Time(*t).IsZero() {
		return nil
	}
	v := time.Time(*t)
	return &v
}

func (t *timestamp) value() time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Time(*t)
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05 MST",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05.999999999 MST",
	"2006-01-02T15:04:05.999999999", // no zone: UTC
}

// parseTime parses a Buildkite time value. "" is the zero time.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasSuffix(s, " UTC") {
		// "UTC" is UTC whatever the local zone; parse it explicitly.
		v, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", strings.TrimSuffix(s, " UTC"), time.UTC)
		if err == nil {
			return v, nil
		}
	}
	for _, layout := range timeLayouts {
		if v, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return v, nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q: unknown format", s)
}
