// Command logeval scores the log analyzer on labelled CI logs.
//
// On a LogChunks sample (-data, holding labels.jsonl): for each log, the
// predicted lines (the union of the analyzer's excerpt ranges) are compared
// with the labelled range: precision, recall and F1 per log, averaged over
// logs; "hit" is the share of logs where at least one labelled line was
// predicted. It prints the scores per language and overall, with the
// analyzer's default weights (in-sample: the weights were chosen on these
// logs) and leave one repository out: for each repository, the ranking
// weights of [loganalysis.Tuning] are refitted on the other repositories'
// logs over a small grid (see grid), and the logs of the
// one left out are scored with the weights fitted without them. Decisions are
// made on the second figure. With categories.jsonl present it prints the
// category accuracy over all rows and over high-confidence rows, and a
// confusion table.
//
// On a CiDiff sample (-cidiff, holding labels.jsonl of fail/pass pairs) it
// scores the failing log alone and with the passing log as a baseline:
// precision counts a predicted line right when it is an error or a context
// line, recall counts error lines found; F1 per pair, averaged.
//
// With -v it lists the worst logs.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
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

// categoryLabel is one line of categories.jsonl.
type categoryLabel struct {
	ID         string `json:"id"`
	Category   string `json:"category"`
	Confidence string `json:"confidence"`
}

// sample is one labelled log held in memory.
type sample struct {
	label
	log      []byte
	category string // "" when the log has no reviewed category
	conf     string
}

// score is the outcome for one log.
type score struct {
	id, language string
	p, r, f1     float64
	hit          bool
	lines        int64
	excerpts     []loganalysis.Excerpt
	gold         [2]int64
	category     string
	summary      string
}

func main() {
	data := flag.String("data", "../shared/datasets/logchunks-dev", "the LogChunks folder (holding labels.jsonl); empty to skip")
	cidiff := flag.String("cidiff", "", "the CiDiff folder (holding labels.jsonl and pairs/); empty to skip")
	verbose := flag.Bool("v", false, "list the worst-scored logs")
	worst := flag.Int("worst", 25, "how many of the worst logs -v lists")
	noLORO := flag.Bool("no-loro", false, "skip the leave-one-repository-out refit")
	flag.Parse()
	ctx := context.Background()
	if *data != "" {
		if err := run(ctx, *data, !*noLORO, *verbose, *worst, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "logeval:", err)
			os.Exit(1)
		}
	}
	if *cidiff != "" {
		if err := runCiDiff(ctx, *cidiff, *verbose, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "logeval:", err)
			os.Exit(1)
		}
	}
}

func run(ctx context.Context, dir string, loro, verbose bool, worst int, w io.Writer) error {
	samples, err := loadSamples(dir)
	if err != nil {
		return err
	}
	def := defaultPoint()
	scores, err := evalAll(ctx, samples, def)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "in-sample (default weights):")
	report(w, scores)
	reportCategories(w, samples, scores)
	if loro {
		fmt.Fprintln(w, "\nleave one repository out (weights refitted without the repository scored):")
		ls, picks, table, err := leaveOneRepoOut(ctx, samples)
		if err != nil {
			return err
		}
		report(w, ls)
		reportCategories(w, samples, ls)
		if verbose {
			fmt.Fprintln(w, "in-sample F1 of each grid point:")
			for i, p := range grid() {
				var a agg
				for _, s := range table[i] {
					a.add(s)
				}
				fmt.Fprintf(w, "  %.3f  %s\n", a.f1/float64(a.n), p)
			}
		}
		fmt.Fprintln(w, "weights picked (folds):")
		for _, p := range sortedPicks(picks) {
			fmt.Fprintf(w, "  %2d  %s\n", picks[p], p)
		}
	}
	if verbose {
		listWorst(w, scores, worst)
		listMiscategorized(w, samples, scores)
	}
	return nil
}

// listMiscategorized lists the high-confidence rows whose predicted
// category differs from the reviewed one.
func listMiscategorized(w io.Writer, samples []sample, scores []score) {
	fmt.Fprintln(w, "\nhigh-confidence rows categorized differently:")
	for i, s := range samples {
		if s.conf == "high" && scores[i].category != s.category {
			fmt.Fprintf(w, "  %-45s %-10s got %-10s %.90q\n", s.ID, s.category, scores[i].category, scores[i].summary)
		}
	}
}

func loadSamples(dir string) ([]sample, error) {
	var labels []label
	if err := readJSONL(filepath.Join(dir, "labels.jsonl"), func() any { return &label{} }, func(v any) {
		labels = append(labels, *v.(*label))
	}); err != nil {
		return nil, err
	}
	cats := map[string]categoryLabel{}
	err := readJSONL(filepath.Join(dir, "categories.jsonl"), func() any { return &categoryLabel{} }, func(v any) {
		c := *v.(*categoryLabel)
		cats[c.ID] = c
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	out := make([]sample, 0, len(labels))
	for _, l := range labels {
		b, err := readGz(filepath.Join(dir, l.LogGz))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", l.ID, err)
		}
		c := cats[l.ID]
		out = append(out, sample{label: l, log: b, category: c.Category, conf: c.Confidence})
	}
	return out, nil
}

func readJSONL(path string, mk func() any, add func(any)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		v := mk()
		if err := json.Unmarshal(sc.Bytes(), v); err != nil {
			return fmt.Errorf("decode %s: %w", filepath.Base(path), err)
		}
		add(v)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return nil
}

func readGz(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("open gzip: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return b, nil
}

// point is one setting of the fitted constants.
type point struct {
	tune     loganalysis.Tuning
	maxLines int
}

func (p point) String() string {
	t := p.tune
	return fmt.Sprintf("first %g, last-fail %g, earlier-fail %g, near %g within %d, long %d lines -%g, margin %g, excerpt ≤ %d lines",
		t.FirstBonus, t.LastFailBonus, t.EarlierFailBonus, t.NearBonus[0], t.NearLines[0], t.LongCluster, t.LongPenalty,
		t.ExtraMargin, p.maxLines)
}

func (p point) options() loganalysis.Options {
	t := p.tune
	return loganalysis.Options{Tuning: &t, MaxExcerptLines: p.maxLines}
}

// defaultMaxLines is the analyzer's default excerpt length.
const defaultMaxLines = 40

func defaultPoint() point { return point{loganalysis.DefaultTuning(), defaultMaxLines} }

// grid is the small set of settings leave-one-repository-out fits over:
// the defaults, and each fitted constant of [loganalysis.Tuning] moved on
// its own to half and to one and a half times its default (one factor at a
// time: 1 + 2×8 points). The default comes first, so ties keep it. The
// excerpt length is not fitted: it follows from what an analysis stores
// (two excerpts of 40 lines fill its 80), and F1 on labelled chunks of
// hundreds of lines would only ever ask for longer excerpts.
func grid() []point {
	d := loganalysis.DefaultTuning()
	out := []point{defaultPoint()}
	add := func(p point) {
		for _, q := range out {
			if q == p {
				return
			}
		}
		out = append(out, p)
	}
	for _, k := range []float64{0.5, 1.5} {
		vary := []func(p *point){
			func(p *point) { p.tune.FirstBonus = d.FirstBonus * k },
			func(p *point) { p.tune.LastFailBonus = d.LastFailBonus * k },
			func(p *point) { p.tune.EarlierFailBonus = d.EarlierFailBonus * k },
			func(p *point) {
				for i := range p.tune.NearBonus {
					p.tune.NearBonus[i] = d.NearBonus[i] * k
				}
			},
			func(p *point) {
				for i := range p.tune.NearLines {
					p.tune.NearLines[i] = int64(float64(d.NearLines[i]) * k)
				}
			},
			func(p *point) { p.tune.LongCluster = int(float64(d.LongCluster) * k) },
			func(p *point) { p.tune.LongPenalty = d.LongPenalty * k },
			func(p *point) { p.tune.ExtraMargin = d.ExtraMargin * k },
		}
		for _, v := range vary {
			p := defaultPoint()
			v(&p)
			add(p)
		}
	}
	return out
}

func evalAll(ctx context.Context, samples []sample, p point) ([]score, error) {
	out := make([]score, len(samples))
	for i, s := range samples {
		res, err := loganalysis.Analyze(ctx, bytes.NewReader(s.log), p.options())
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", s.ID, err)
		}
		if res.Lines != s.LogLines || res.Bytes != s.LogBytes {
			return nil, fmt.Errorf("evaluate %s: counted %d lines and %d bytes, the label says %d and %d",
				s.ID, res.Lines, res.Bytes, s.LogLines, s.LogBytes)
		}
		out[i] = scoreOf(s.label, res)
	}
	return out, nil
}

// leaveOneRepoOut scores each repository's logs with the grid point that has
// the best mean F1 over the other repositories' logs. It returns the scores
// in sample order, how often each point was picked, and every point's
// scores (in grid order).
func leaveOneRepoOut(ctx context.Context, samples []sample) ([]score, map[string]int, [][]score, error) {
	pts := grid()
	table := make([][]score, len(pts))
	// Two workers: enough to halve the wait, few enough for a shared
	// machine.
	errs := make([]error, len(pts))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, p := range pts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			table[i], errs[i] = evalAll(ctx, samples, p)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, nil, err
	}
	repos := map[string]bool{}
	for _, s := range samples {
		repos[s.Repo] = true
	}
	out := make([]score, len(samples))
	picks := map[string]int{}
	for repo := range repos {
		best, bestF1 := 0, -1.0
		for i := range pts {
			f1 := 0.0
			for j, s := range samples {
				if s.Repo != repo {
					f1 += table[i][j].f1
				}
			}
			if f1 > bestF1+1e-9 {
				best, bestF1 = i, f1
			}
		}
		picks[pts[best].String()]++
		for j, s := range samples {
			if s.Repo == repo {
				out[j] = table[best][j]
			}
		}
	}
	return out, picks, table, nil
}

func sortedPicks(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] > m[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

// scoreOf compares the union of the excerpt ranges with the gold range.
func scoreOf(l label, res loganalysis.Result) score {
	pred := predicted(res)
	tp := int64(0)
	for n := range pred {
		if n >= l.GoldStartLine && n <= l.GoldEndLine {
			tp++
		}
	}
	s := score{id: l.ID, language: l.Language, lines: int64(len(pred)), excerpts: res.Excerpts,
		gold: [2]int64{l.GoldStartLine, l.GoldEndLine}, hit: tp > 0, category: string(res.Category), summary: res.Summary}
	if len(pred) > 0 {
		s.p = float64(tp) / float64(len(pred))
	}
	s.r = float64(tp) / float64(l.GoldEndLine-l.GoldStartLine+1)
	s.f1 = f1(s.p, s.r)
	return s
}

func predicted(res loganalysis.Result) map[int64]bool {
	pred := map[int64]bool{}
	for _, e := range res.Excerpts {
		for n := e.StartLine; n <= e.EndLine; n++ {
			pred[n] = true
		}
	}
	return pred
}

func f1(p, r float64) float64 {
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
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

// categoryNames are the categories in the order the confusion table shows.
var categoryNames = []string{"test", "compile", "lint", "dependency", "config", "infrastructure", "timeout", "oom", "unknown"}

// reportCategories prints the category accuracy against the reviewed
// labels, over all rows and over high-confidence rows, and a confusion
// table of the high-confidence rows (reviewed label down, predicted across).
func reportCategories(w io.Writer, samples []sample, scores []score) {
	var all, allOK, high, highOK int
	conf := map[[2]string]int{}
	for i, s := range samples {
		if s.category == "" {
			continue
		}
		ok := scores[i].category == s.category
		all++
		if ok {
			allOK++
		}
		if s.conf == "high" {
			high++
			if ok {
				highOK++
			}
			conf[[2]string{s.category, scores[i].category}]++
		}
	}
	if all == 0 {
		return
	}
	fmt.Fprintf(w, "category accuracy: all rows %.3f (%d/%d), high-confidence rows %.3f (%d/%d)\n",
		float64(allOK)/float64(all), allOK, all, ratio(highOK, high), highOK, high)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "high-confidence: label \\ predicted\t")
	short := func(c string) string { return c[:min(len(c), 5)] }
	for _, c := range categoryNames {
		fmt.Fprintf(tw, "%s\t", short(c))
	}
	fmt.Fprintln(tw, "recall\t")
	for _, l := range categoryNames {
		n := 0
		for _, p := range categoryNames {
			n += conf[[2]string{l, p}]
		}
		if n == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t", l)
		for _, p := range categoryNames {
			fmt.Fprintf(tw, "%d\t", conf[[2]string{l, p}])
		}
		fmt.Fprintf(tw, "%.2f\t\n", ratio(conf[[2]string{l, l}], n))
	}
	tw.Flush()
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
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
		fmt.Fprintf(w, "  %-45s F1 %.2f  P %.2f R %.2f  gold %d-%d  predicted %v  %s\n",
			x.id, x.f1, x.p, x.r, x.gold[0], x.gold[1], rng, x.category)
	}
}
