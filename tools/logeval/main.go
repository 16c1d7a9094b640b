// Command logeval scores the log analyzer on a labelled LogChunks sample.
//
// For each log, the predicted lines (the union of the analyzer's excerpt
// ranges) are compared with the labelled range: precision, recall and F1 per
// log, averaged over logs; "hit" is the share of logs where at least one
// labelled line was predicted. It prints the scores per language and overall,
// and with -v the worst logs.
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

// label is one line of labels.jsonl.
type label struct {
	ID            string `json:"id"`
	Language      string `json:"language"`
	Repo          string `json:"repo"`
	LogGz         string `json:"log_gz"`
	GoldStartLine int64  `json:"gold_start_line"`
	GoldEndLine   int64  `json:"gold_end_line"`
	LogBytes      int64  `json:"log_bytes"`
	LogLines      int64  `json:"log_lines"`
}

// score is the outcome for one log.
type score struct {
	id, language string
	p, r, f1     float64
	hit          bool
	lines        int64
	excerpts     []loganalysis.Excerpt
	gold         [2]int64
}

func main() {
	data := flag.String("data", "../shared/datasets/logchunks-dev", "the dataset folder (holding labels.jsonl)")
	verbose := flag.Bool("v", false, "list the worst-scored logs")
	worst := flag.Int("worst", 25, "how many of the worst logs -v lists")
	flag.Parse()
	if err := run(context.Background(), *data, *verbose, *worst, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "logeval:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, verbose bool, worst int, w io.Writer) error {
	labels, err := readLabels(filepath.Join(dir, "labels.jsonl"))
	if err != nil {
		return err
	}
	var scores []score
	for _, l := range labels {
		s, err := evalOne(ctx, dir, l)
		if err != nil {
			return fmt.Errorf("evaluate %s: %w", l.ID, err)
		}
		scores = append(scores, s)
	}
	report(w, scores)
	if verbose {
		listWorst(w, scores, worst)
	}
	return nil
}

func readLabels(path string) ([]label, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open labels: %w", err)
	}
	defer f.Close()
	var out []label
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l label
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("decode label: %w", err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return out, nil
}

func evalOne(ctx context.Context, dir string, l label) (score, error) {
	f, err := os.Open(filepath.Join(dir, l.LogGz))
	if err != nil {
		return score{}, fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return score{}, fmt.Errorf("open gzip: %w", err)
	}
	res, err := loganalysis.Analyze(ctx, zr, loganalysis.Options{})
	if err != nil {
		return score{}, err
	}
	if res.Lines != l.LogLines || res.Bytes != l.LogBytes {
		return score{}, fmt.Errorf("counted %d lines and %d bytes, the label says %d and %d",
			res.Lines, res.Bytes, l.LogLines, l.LogBytes)
	}
	return scoreOf(l, res), nil
}

// scoreOf compares the union of the excerpt ranges with the gold range.
func scoreOf(l label, res loganalysis.Result) score {
	pred := map[int64]bool{}
	for _, e := range res.Excerpts {
		for n := e.StartLine; n <= e.EndLine; n++ {
			pred[n] = true
		}
	}
	tp := int64(0)
	for n := range pred {
		if n >= l.GoldStartLine && n <= l.GoldEndLine {
			tp++
		}
	}
	s := score{id: l.ID, language: l.Language, lines: int64(len(pred)), excerpts: res.Excerpts,
		gold: [2]int64{l.GoldStartLine, l.GoldEndLine}, hit: tp > 0}
	if len(pred) > 0 {
		s.p = float64(tp) / float64(len(pred))
	}
	s.r = float64(tp) / float64(l.GoldEndLine-l.GoldStartLine+1)
	if s.p+s.r > 0 {
		s.f1 = 2 * s.p * s.r / (s.p + s.r)
	}
	return s
}

// agg sums scores for one group.
type agg struct {
	n             int
	p, r, f1, hit float64
	lines         []int64
}

func (a *agg) add(s score) {
	a.n++
	a.p += s.p
	a.r += s.r
	a.f1 += s.f1
	if s.hit {
		a.hit++
	}
	a.lines = append(a.lines, s.lines)
}

func (a *agg) median() float64 {
	if len(a.lines) == 0 {
		return 0
	}
	l := append([]int64(nil), a.lines...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	if len(l)%2 == 1 {
		return float64(l[len(l)/2])
	}
	return float64(l[len(l)/2-1]+l[len(l)/2]) / 2
}

func report(w io.Writer, scores []score) {
	groups := map[string]*agg{}
	var all agg
	for _, s := range scores {
		g := groups[s.language]
		if g == nil {
			g = &agg{}
			groups[s.language] = g
		}
		g.add(s)
		all.add(s)
	}
	names := make([]string, 0, len(groups))
	for k := range groups {
		names = append(names, k)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "language\tlogs\tprecision\trecall\tF1\thit\tmedian lines\t")
	row := func(name string, a *agg) {
		n := float64(a.n)
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t\n", name, a.n, a.p/n, a.r/n, a.f1/n, a.hit/n, a.median())
	}
	for _, k := range names {
		row(k, groups[k])
	}
	row("overall", &all)
	tw.Flush()
}

func listWorst(w io.Writer, scores []score, n int) {
	s := append([]score(nil), scores...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].f1 < s[j].f1 })
	fmt.Fprintf(w, "\nworst %d logs:\n", min(n, len(s)))
	for _, x := range s[:min(n, len(s))] {
		var rng []string
		for _, e := range x.excerpts {
			rng = append(rng, fmt.Sprintf("%d-%d", e.StartLine, e.EndLine))
		}
		fmt.Fprintf(w, "  %-45s F1 %.2f  P %.2f R %.2f  gold %d-%d  predicted %v\n",
			x.id, x.f1, x.p, x.r, x.gold[0], x.gold[1], rng)
	}
}
