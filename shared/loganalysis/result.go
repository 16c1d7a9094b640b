package loganalysis

// Category names the kind of failure a log shows.
type Category string

// The categories a [Result] can have.
const (
	CategoryTest           Category = "test"
	CategoryCompile        Category = "compile"
	CategoryLint           Category = "lint"
	CategoryDependency     Category = "dependency"
	CategoryConfig         Category = "config"
	CategoryInfrastructure Category = "infrastructure"
	CategoryTimeout        Category = "timeout"
	CategoryOOM            Category = "oom"
	CategoryUnknown        Category = "unknown"
)

// Result is the analysis of one log. Its JSON encoding is the shape that
// `kitefix analyze --json` prints and the analyze function stores.
//
// Slices are never nil, so they encode as [] rather than null. ExitStatus is
// nil, and omitted from the JSON, when the log does not show the exit status
// of the failing command.
type Result struct {
	Category     Category        `json:"category"`
	Summary      string          `json:"summary"`
	Excerpts     []Excerpt       `json:"excerpts"`
	FailingTests []FailingTest   `json:"failing_tests"`
	Errors       []ErrorLocation `json:"errors"`
	Section      string          `json:"section"`
	Command      string          `json:"command"`
	ExitStatus   *int            `json:"exit_status,omitempty"`
	Fingerprint  string          `json:"fingerprint"`
	Lines        int64           `json:"lines"`
	Bytes        int64           `json:"bytes"`
}

// Excerpt is a range of cleaned log lines, 1-based and inclusive.
type Excerpt struct {
	StartLine int64  `json:"start_line"`
	EndLine   int64  `json:"end_line"`
	Text      string `json:"text"`
}

// FailingTest is a test the log reports as failed. File and Line are empty
// when the log does not say where the test is.
type FailingTest struct {
	Name string `json:"name"`
	File string `json:"file"`
	Line int    `json:"line"`
}

// ErrorLocation is a compiler, linter or runtime error with the place it
// points at. Line and Column are 0 when the log does not give them.
type ErrorLocation struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

// Options tunes [Analyze]. The zero value uses the defaults.
type Options struct {
	// MaxExcerpts caps the number of excerpts (default 2).
	MaxExcerpts int
	// MaxExcerptLines caps the lines of one excerpt (default 40: two
	// excerpts fill the 80 lines an analysis stores; a person reads them
	// in an annotation).
	MaxExcerptLines int
	// Baseline, when set, holds the lines of a passing log of the same
	// job: lines of the failed log that also occur there (after
	// normalisation, see [NewBaseline]) are ordinary output, not signs of
	// the failure.
	Baseline *Baseline
	// Tuning, when set, replaces the weights that rank candidate excerpts
	// (see [DefaultTuning]). It exists so that evaluation can refit them.
	Tuning *Tuning
}

func (o Options) withDefaults() Options {
	if o.MaxExcerpts <= 0 {
		o.MaxExcerpts = 2
	}
	if o.MaxExcerptLines <= 0 {
		o.MaxExcerptLines = 40
	}
	return o
}
