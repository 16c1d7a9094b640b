package loganalysis

import "sort"

// result picks the best explanation from what was gathered.
func (a *analyzer) result() Result {
	a.closeOpen()
	a.closeAgent()
	if len(a.fails) == 0 || a.lastFail().seg != a.seg {
		// No exit report closed the last segment: its end is the log's.
		a.tailCluster()
	}
	res := Result{Category: CategoryUnknown, Excerpts: []Excerpt{}, FailingTests: []FailingTest{},
		Errors: []ErrorLocation{}}
	if a.ln == 0 {
		res.Summary = "the log is empty"
		res.Fingerprint = fingerprint(res.Category, nil)
		return res
	}
	type ranked struct {
		c *cluster
		s float64
	}
	lastOfSeg := map[int]int{}
	for _, c := range a.clusters {
		if !c.tail && c.seq > lastOfSeg[c.seg] {
			lastOfSeg[c.seg] = c.seq
		}
	}
	// The first failure that names a test or an error location in a
	// segment is often the cause of what follows.
	firstOfSeg := map[int]int{}
	for _, c := range a.clusters {
		if (c.named || c.specific > 0 && c.maxScore >= 5) && c.maxScore >= firstMinScore && c.lastActive > c.firstCand {
			if f, ok := firstOfSeg[c.seg]; !ok || c.seq < f {
				firstOfSeg[c.seg] = c.seq
			}
		}
	}
	rs := make([]ranked, 0, len(a.clusters))
	for _, c := range a.clusters {
		s := a.rank(c, lastOfSeg[c.seg] == c.seq)
		if f, ok := firstOfSeg[c.seg]; ok && f == c.seq {
			s += a.tune.FirstBonus
		}
		rs = append(rs, ranked{c, s})
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].s != rs[j].s {
			return rs[i].s > rs[j].s
		}
		return rs[i].c.seq > rs[j].c.seq
	})
	var best *cluster
	if ab := a.agentBest; ab != nil && (len(rs) == 0 || rs[0].c.tail || rs[0].c.maxScore < 3) {
		// Nothing in the output explains the failure: the agent's own
		// report does.
		best = ab
		res.Excerpts = append(res.Excerpts, best.excerpt(a.opts.MaxExcerptLines))
	} else if len(rs) > 0 {
		best = rs[0].c
		res.Excerpts = append(res.Excerpts, best.excerpt(a.opts.MaxExcerptLines))
		if ab != nil && ab.agent >= agentCancel && a.opts.MaxExcerpts > 1 && ab.start >= best.start+int64(len(best.lines)) {
			// Say also that the job was cut short.
			res.Excerpts = append(res.Excerpts, ab.excerpt(a.opts.MaxExcerptLines))
		}
		for _, r := range rs[1:] {
			if len(res.Excerpts) >= a.opts.MaxExcerpts {
				break
			}
			// Another excerpt only when it is nearly as good.
			if r.c.tail || r.c.seg != best.seg || r.s < rs[0].s-a.tune.ExtraMargin || r.c.maxScore < 4 {
				continue
			}
			res.Excerpts = append(res.Excerpts, r.c.excerpt(a.opts.MaxExcerptLines))
		}
	}
	a.describe(&res, best)
	return res
}
