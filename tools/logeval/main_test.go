package main

import (
	"strings"
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

func TestGrid(t *testing.T) {
	g := grid()
	if g[0] != defaultPoint() {
		t.Fatalf("grid()[0] = %v, want the defaults", g[0])
	}
	seen := map[point]bool{}
	for _, p := range g {
		if seen[p] {
			t.Errorf("point %v twice", p)
		}
		seen[p] = true
		if p.maxLines != defaultMaxLines {
			t.Errorf("point %v fits the excerpt length", p)
		}
	}
	if len(g) < 10 {
		t.Errorf("grid has %d points, want one per constant and direction", len(g))
	}
}

func TestScorePair(t *testing.T) {
	l := pairLabel{ErrorLines: [][2]int64{{10, 11}}, ContextLines: [][2]int64{{9, 9}}}
	tests := []struct {
		name     string
		excerpts []loganalysis.Excerpt
		p, r     float64
	}{
		{"errors and context", []loganalysis.Excerpt{{StartLine: 9, EndLine: 11}}, 1, 1},
		{"one error line and noise", []loganalysis.Excerpt{{StartLine: 11, EndLine: 12}}, 0.5, 0.5},
		{"none", nil, 0, 0},
	}
	for _, tt := range tests {
		s := scorePair(l, loganalysis.Result{Excerpts: tt.excerpts})
		if diff := cmp.Diff([]float64{tt.p, tt.r}, []float64{s.p, s.r}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestReportCategories(t *testing.T) {
	samples := []sample{
		{category: "test", conf: "high"}, {category: "lint", conf: "high"}, {category: "config", conf: "medium"},
	}
	scores := []score{{category: "test"}, {category: "unknown"}, {category: "config"}}
	var b strings.Builder
	reportCategories(&b, samples, scores)
	for _, want := range []string{"all rows 0.667 (2/3)", "high-confidence rows 0.500 (1/2)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report does not say %q:\n%s", want, b.String())
		}
	}
}
