package analysis

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestEvictOldest(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		entries map[string]passingLog
		want    []string
	}{
		{
			name: "oldest of three goes",
			entries: map[string]passingLog{
				"a": {at: t0.Add(time.Minute)},
				"b": {at: t0},
				"c": {at: t0.Add(2 * time.Minute)},
			},
			want: []string{"a", "c"},
		},
		{
			name:    "the only entry goes",
			entries: map[string]passingLog{"a": {at: t0}},
			want:    []string{},
		},
		{
			name:    "empty stays empty",
			entries: map[string]passingLog{},
			want:    []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evictOldest(tt.entries, func(e passingLog) time.Time { return e.at })
			got := slices.Sorted(maps.Keys(tt.entries))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("keys after evictOldest (-want +got):\n%s", diff)
			}
		})
	}
}
