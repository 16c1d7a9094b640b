package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

func TestScoreOf(t *testing.T) {
	l := label{GoldStartLine: 10, GoldEndLine: 13}
	tests := []struct {
		name     string
		excerpts []loganalysis.Excerpt
		p, r     float64
		hit      bool
	}{
		{"exact", []loganalysis.Excerpt{{StartLine: 10, EndLine: 13}}, 1, 1, true},
		{"half inside", []loganalysis.Excerpt{{StartLine: 12, EndLine: 15}}, 0.5, 0.5, true},
		{"miss", []loganalysis.Excerpt{{StartLine: 1, EndLine: 2}}, 0, 0, false},
		{"none", nil, 0, 0, false},
		{"union of overlapping excerpts", []loganalysis.Excerpt{{StartLine: 10, EndLine: 11}, {StartLine: 11, EndLine: 12}}, 1, 0.75, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := scoreOf(l, loganalysis.Result{Excerpts: tt.excerpts})
			if diff := cmp.Diff([]any{tt.p, tt.r, tt.hit}, []any{s.p, s.r, s.hit}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	a := agg{lines: []int64{9, 1, 5, 3}}
	if got := a.median(); got != 4 {
		t.Errorf("median = %v, want 4", got)
	}
}
