package loganalysis

import "strings"

const (
	// maxClusters bounds the candidate excerpts kept while reading.
	maxClusters = 64
	// maxClusterLines bounds the lines one candidate keeps.
	maxClusterLines = 120
	// maxIdle is how many unremarkable non-blank lines end a candidate.
	maxIdle = 2
	// maxQuiet is how many lines of any kind after the last active one end
	// a candidate.
	maxQuiet = 8
)

// cluster is a run of nearby lines that signal a failure: a candidate
// excerpt.
type cluster struct {
	seq        int // order of creation
	seg        int // the command segment it is in (see analyzer.seg)
	section    string
	command    string
	start      int64 // line number of lines[0]
	lines      []string
	scores     []int8
	firstCand  int64
	lastActive int64
	maxScore   int
	nCand      int
	idle       int
	full       bool
	tail       bool // made from the lines before an exit marker, not from signals
	specific   int  // lines naming a failing test, an error location or a stack frame
	named      bool // a line names a failing test or an error location
	keep       int  // the value that decides eviction (see keepValue)
	agent      agentKind
	agentText  string // the agent's report, for the summary
	goTest     string // the test go test -v was running when it started
	indent     int    // the indent of the line that started it
	votes      [numVotes]int
}

func (c *cluster) add(text []byte, score int) {
	if len(c.lines) >= maxClusterLines {
		c.full = true
		return
	}
	c.lines = append(c.lines, string(appendCapped(nil, text)))
	c.scores = append(c.scores, int8(score))
}

// dedented reports whether an indented line sits left of the line that
// started the cluster: the block it explained has ended ("  Finished: x"
// after "      x.Test [FAIL]" and its indented details).
func (c *cluster) dedented(line []byte) bool {
	n := len(line) - len(trimIndent(line))
	return n > 0 && n < c.indent
}

// trim drops lines after the last active one.
func (c *cluster) trim() {
	keep := int(c.lastActive - c.start + 1)
	if keep < len(c.lines) && keep >= 0 {
		c.lines = c.lines[:keep]
		c.scores = c.scores[:keep]
	}
}

// excerpt cuts the cluster down to at most max lines without blank edges.
func (c *cluster) excerpt(max int) Excerpt {
	lo, hi := 0, len(c.lines)-1
	for lo < hi && strings.TrimSpace(c.lines[lo]) == "" {
		lo++
	}
	for hi > lo && strings.TrimSpace(c.lines[hi]) == "" {
		hi--
	}
	if hi-lo+1 > max {
		// Start at the first line that signals the failure.
		for i := lo; i <= hi; i++ {
			if c.scores[i] >= 2 {
				lo = i
				break
			}
		}
		if hi-lo+1 > max {
			hi = lo + max - 1
		}
		for hi > lo && strings.TrimSpace(c.lines[hi]) == "" {
			hi--
		}
	}
	return Excerpt{
		StartLine: c.start + int64(lo),
		EndLine:   c.start + int64(hi),
		Text:      strings.ToValidUTF8(strings.Join(c.lines[lo:hi+1], "\n"), "\uFFFD"),
	}
}

// keepValue orders clusters for eviction: the lowest goes first. Clusters
// in a segment whose command failed are kept over all others, and then
// those that name a failing test or an error location: a long log of
// logged stack traces must not push the one failed test out.
func (a *analyzer) keepValue(c *cluster) int {
	v := c.maxScore*10 + min(c.nCand, 9)
	if c.named {
		v += namedKeep
	}
	if a.segFailed(c.seg) {
		v += 1000
	}
	return v
}

// namedKeep is what naming a failing test or an error location adds to a
// cluster's keep value: more than any score (at most a few tens), less than
// being in a failed command's output (1000).
const namedKeep = 500

// store adds a finished cluster, evicting the weakest when full.
func (a *analyzer) store(c *cluster) {
	c.keep = a.keepValue(c)
	a.clusters = append(a.clusters, c)
	if len(a.clusters) <= maxClusters {
		return
	}
	worst := 0
	for i, k := range a.clusters {
		if k.keep < a.clusters[worst].keep {
			worst = i
		}
	}
	a.clusters = append(a.clusters[:worst], a.clusters[worst+1:]...)
}

// keepFailed raises the keep value of the clusters in a segment that has
// just been reported failed.
func (a *analyzer) keepFailed(seg int) {
	for _, c := range a.clusters {
		if c.seg == seg && c.keep < 1000 {
			c.keep += 1000
		}
	}
}

// rank scores a finished cluster as an explanation of the failure.
func (a *analyzer) rank(c *cluster, lastOfSeg bool) float64 {
	s := float64(c.maxScore) + 0.3*float64(min(c.nCand-1, 5))
	end := a.ln
	if c.seg == a.seg && c.seg > a.lastFail().seg && !c.tail {
		s++ // the log stops in this segment, before any exit report
	}
	if fm, ok := a.failMark(c.seg); ok {
		end = fm.line
		if fm.seq == a.lastFail().seq {
			s += a.tune.LastFailBonus
		} else {
			s += a.tune.EarlierFailBonus
		}
	}
	for i, n := range a.tune.NearLines {
		if end-c.lastActive <= n {
			s += a.tune.NearBonus[i]
			break
		}
	}
	if lastOfSeg && !c.tail {
		s++
	}
	s += float64(min(c.specific, 2))
	if len(c.lines) >= a.tune.LongCluster {
		s -= a.tune.LongPenalty
	}
	return s
}
