package buildkite

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2015-05-09T21:05:59.874Z", want: time.Date(2015, 5, 9, 21, 5, 59, 874e6, time.UTC)},
		{in: "2015-05-09T21:05:59Z", want: time.Date(2015, 5, 9, 21, 5, 59, 0, time.UTC)},
		{in: "2015-05-09T23:05:59+02:00", want: time.Date(2015, 5, 9, 21, 5, 59, 0, time.UTC)},
		{in: "2025-07-23 06:07:42 UTC", want: time.Date(2025, 7, 23, 6, 7, 42, 0, time.UTC)},
		{in: "2025-07-23 06:07:42.5 UTC", want: time.Date(2025, 7, 23, 6, 7, 42, 5e8, time.UTC)},
		{in: "2025-07-23 16:07:42 +1000", want: time.Date(2025, 7, 23, 6, 7, 42, 0, time.UTC)},
		{in: "", want: time.Time{}},
		{in: "yesterday", wantErr: true},
		{in: "2025-13-23 06:07:42 UTC", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTime(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseTime(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("parseTime(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestTimestampJSON(t *testing.T) {
	var v struct {
		A, B, C, D *timestamp
	}
	if err := json.Unmarshal([]byte(`{"A":"2015-05-09T21:05:59.874Z","B":"2025-07-23 06:07:42 UTC","C":null,"D":""}`), &v); err != nil {
		t.Fatal(err)
	}
	if got := v.A.ptr(); got == nil || !got.Equal(time.Date(2015, 5, 9, 21, 5, 59, 874e6, time.UTC)) {
		t.Errorf("A = %v", got)
	}
	if got := v.B.ptr(); got == nil || !got.Equal(time.Date(2025, 7, 23, 6, 7, 42, 0, time.UTC)) {
		t.Errorf("B = %v", got)
	}
	if v.C.ptr() != nil || v.D.ptr() != nil {
		t.Errorf("null and empty should decode to nil, got %v, %v", v.C.ptr(), v.D.ptr())
	}
	if err := json.Unmarshal([]byte(`{"A":12}`), &v); err == nil {
		t.Error("a number decoded as a time")
	}
}

func TestDecodedRecordsRoundTrip(t *testing.T) {
	b := wantBuild42(t)
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got Build
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.FinishedAt == nil || !got.FinishedAt.Equal(*b.FinishedAt) || len(got.Jobs) != len(b.Jobs) ||
		got.Jobs[1].RetrySource == nil || got.Jobs[1].RetrySource.JobID != b.Jobs[1].RetrySource.JobID {
		t.Errorf("round trip lost data: %+v", got)
	}
}
