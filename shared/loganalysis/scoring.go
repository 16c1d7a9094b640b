package loganalysis

// Scoring, in one place.
//
// Every line of a log goes through three steps:
//
//  1. classify: [structure] says what kind of line it is (a group header, a
//     command, an exit report, text), [features] finds the failure signals
//     in its words and the rules find failing tests and error locations;
//  2. score: [lineScore] and the rules turn what was found into a line
//     score on the scale below, and [ordinary] caps it when the line is
//     ordinary output (a passing result, a retry, a warning, a line the
//     passing run printed too);
//  3. place: [analyzer.place] adds the line to the open candidate excerpt,
//     starts one, or lets the open one go quiet.
//
// At the end each finished candidate (a cluster of lines) is ranked by
// [analyzer.rank] with the weights of [Tuning], and the best one becomes the
// first excerpt.

// The line score scale.
const (
	// scoreOrdinary: nothing suggests a failure.
	scoreOrdinary = 0
	// scoreContext: a weak sign (exit, warning) or a line that only reports
	// what failed elsewhere; it can extend a candidate but never starts one.
	scoreContext = 1
	// scoreSignal: the least that starts a candidate excerpt.
	scoreSignal = 2
	// scoreStrong: an error, failure or exception word, or a rule's find.
	scoreStrong = 3
)

// featureWeight is the score each failure signal gives a line. A line takes
// the weight of its strongest signal, one more when an error or failure word
// leads it, and one more when it holds two strong (≥ scoreSignal) signals
// (see lineScore). Crashes weigh most: nothing prints them by accident.
// Exit and warning words alone are context only.
var featureWeight = [...]struct {
	f feature
	w int
}{
	{fPanic, 4}, {fCrash, 4}, {fError, 3}, {fFail, 3}, {fFatal, 3}, {fException, 3},
	{fAbort, 3}, {fKilled, 3}, {fTrace, 3}, {fMark, 3}, {fOOM, 3}, {fBullet, 2},
	{fTimeout, 2}, {fProblem, 2}, {fExpect, 2}, {fIssue, 2}, {fExit, 1}, {fWarn, 1},
}

// lineScore turns a line's signals into its score.
func lineScore(f feature) int {
	best, strong := 0, 0
	for _, fw := range featureWeight {
		if f&fw.f != 0 {
			if fw.w > best {
				best = fw.w
			}
			if fw.w >= scoreSignal {
				strong++
			}
		}
	}
	if f&fLead != 0 {
		best++
	}
	if strong >= 2 {
		best++
	}
	return best
}

// Tuning holds the weights that rank candidate excerpts against each other.
// They were chosen by measuring on labelled logs; evaluation tools refit them
// (leave one repository out) through [Options].Tuning. The zero value of a
// field is a valid weight, so a Tuning is always given whole: start from
// [DefaultTuning].
type Tuning struct {
	// FirstBonus goes to the earliest candidate of a command's output that
	// names a failing test or an error location: when one failure sets off
	// others, the first one explains them.
	FirstBonus float64
	// LastFailBonus goes to candidates in the output of the command whose
	// failure the log reports last (the one that failed the job);
	// EarlierFailBonus to those of other commands reported failed.
	LastFailBonus, EarlierFailBonus float64
	// NearBonus goes to a candidate that ends within NearLines[i] lines of
	// the end of its command's output (or of the log): the cause of a
	// failure is printed shortly before the command gives up.
	NearBonus [4]float64
	NearLines [4]int64
	// LongCluster and LongPenalty: a candidate of LongCluster lines or more
	// is more often a dump of names or settings than an explanation.
	LongCluster int
	LongPenalty float64
	// ExtraMargin: a further excerpt is shown only when it ranks within
	// ExtraMargin of the best one.
	ExtraMargin float64
}

// DefaultTuning returns the weights the analyzer uses unless told otherwise.
func DefaultTuning() Tuning {
	return Tuning{
		FirstBonus:       4,
		LastFailBonus:    4,
		EarlierFailBonus: 2,
		NearBonus:        [4]float64{4, 3, 2, 1},
		NearLines:        [4]int64{10, 30, 100, 300},
		LongCluster:      60,
		LongPenalty:      2,
		ExtraMargin:      2,
	}
}

// firstMinScore is the least line score a candidate needs for FirstBonus: a
// strong signal, not a hint.
const firstMinScore = scoreStrong
