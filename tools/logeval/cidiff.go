package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

// pairLabel is one line of a CiDiff labels.jsonl.
type pairLabel struct {
	ID           string     `json:"id"`
	FailGz       string     `json:"fail_gz"`
	PassGz       string     `json:"pass_gz"`
	FailLines    int64      `json:"fail_lines"`
	ErrorLines   [][2]int64 `json:"error_lines"`
	ContextLines [][2]int64 `json:"context_lines"`
}

// pairScore is the outcome for one pair, without and with the baseline.
type pairScore struct {
	id         string
	alone, cmp prf
}

type prf struct {
	p, r, f1 float64
	lines    int
	excerpts []loganalysis.Excerpt
}

func runCiDiff(ctx context.Context, dir string, verbose bool, w io.Writer) error {
	var labels []pairLabel
	if err := readJSONL(filepath.Join(dir, "labels.jsonl"), func() any { return &pairLabel{} }, func(v any) {
		labels = append(labels, *v.(*pairLabel))
	}); err != nil {
		return err
	}
	var scores []pairScore
	for _, l := range labels {
		s, err := evalPair(ctx, dir, l)
		if err != nil {
			return fmt.Errorf("evaluate %s: %w", l.ID, err)
		}
		scores = append(scores, s)
	}
	var a, b prf
	var la, lb []int
	for _, s := range scores {
		a.p, a.r, a.f1 = a.p+s.alone.p, a.r+s.alone.r, a.f1+s.alone.f1
		b.p, b.r, b.f1 = b.p+s.cmp.p, b.r+s.cmp.r, b.f1+s.cmp.f1
		la, lb = append(la, s.alone.lines), append(lb, s.cmp.lines)
	}
	n := float64(len(scores))
	fmt.Fprintf(w, "\nCiDiff pairs (%d): failing log alone: P %.3f R %.3f F1 %.3f median %.1f lines; "+
		"with the passing log as baseline: P %.3f R %.3f F1 %.3f median %.1f lines\n",
		len(scores), a.p/n, a.r/n, a.f1/n, medianInts(la), b.p/n, b.r/n, b.f1/n, medianInts(lb))
	if verbose {
		for _, s := range scores {
			fmt.Fprintf(w, "  %-40s alone F1 %.2f %v  baseline F1 %.2f %v\n", s.id,
				s.alone.f1, ranges(s.alone.excerpts), s.cmp.f1, ranges(s.cmp.excerpts))
		}
	}
	return nil
}

func evalPair(ctx context.Context, dir string, l pairLabel) (pairScore, error) {
	fail, err := readGz(filepath.Join(dir, l.FailGz))
	if err != nil {
		return pairScore{}, err
	}
	pass, err := readGz(filepath.Join(dir, l.PassGz))
	if err != nil {
		return pairScore{}, err
	}
	alone, err := loganalysis.Analyze(ctx, bytes.NewReader(fail), loganalysis.Options{})
	if err != nil {
		return pairScore{}, err
	}
	if alone.Lines != l.FailLines {
		return pairScore{}, fmt.Errorf("counted %d lines, the label says %d", alone.Lines, l.FailLines)
	}
	base, err := loganalysis.NewBaseline(ctx, bytes.NewReader(pass))
	if err != nil {
		return pairScore{}, err
	}
	withBase, err := loganalysis.Analyze(ctx, bytes.NewReader(fail), loganalysis.Options{Baseline: base})
	if err != nil {
		return pairScore{}, err
	}
	return pairScore{id: l.ID, alone: scorePair(l, alone), cmp: scorePair(l, withBase)}, nil
}

// scorePair scores one analysis: a predicted line is right when it is an
// error or a context line; recall counts the error lines found.
func scorePair(l pairLabel, res loganalysis.Result) prf {
	in := func(rs [][2]int64, n int64) bool {
		for _, r := range rs {
			if n >= r[0] && n <= r[1] {
				return true
			}
		}
		return false
	}
	pred := predicted(res)
	right, found := 0, 0
	for n := range pred {
		if in(l.ErrorLines, n) || in(l.ContextLines, n) {
			right++
		}
		if in(l.ErrorLines, n) {
			found++
		}
	}
	errs := int64(0)
	for _, r := range l.ErrorLines {
		errs += r[1] - r[0] + 1
	}
	s := prf{lines: len(pred), excerpts: res.Excerpts}
	if len(pred) > 0 {
		s.p = float64(right) / float64(len(pred))
	}
	if errs > 0 {
		s.r = float64(found) / float64(errs)
	}
	s.f1 = f1(s.p, s.r)
	return s
}

func medianInts(v []int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int(nil), v...)
	sort.Ints(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

func ranges(xs []loganalysis.Excerpt) []string {
	var out []string
	for _, e := range xs {
		out = append(out, fmt.Sprintf("%d-%d", e.StartLine, e.EndLine))
	}
	return out
}
