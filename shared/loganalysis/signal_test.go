package loganalysis

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLineSignals(t *testing.T) {
	tests := []struct {
		line   string
		strong bool // scores as a failure (2 or more) and is not only a tally
	}{
		{"error: cannot find module 'x'", true},
		{"AssertionError: expected 1 to equal 2", true},
		{"attempt 3 failed: connect ECONNREFUSED 10.0.0.12:443, giving up", true},
		{"2024-05-01 10:00:01 ERROR could not connect", true},
		{"#8 1.904 error: failed to solve", true},
		{"=== RUN   TestErrorHandling/case_1", false},
		{"Compiling error-chain v0.12.4", false},
		{"No errors found in 12 files.", false},
		{"finished without errors", false},
		{"Ran 12 tests: all passed, 0 failures", false},
		{"3 failed, 10 passed", false}, // a tally: it heads or closes a failure
		{"npm error 404 Not Found - GET https://registry.npmjs.org/left-padd - Not found", true},
		{"npm error 404  'left-padd@^1.3.0' is not in this registry.", true},
		{"npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padd - Not found", true},
		{"Tests run: 5, Failures: 1, Errors: 0, Skipped: 0", false},
		{"com.acme.FailureAccrualFactory$anon didMarkDead", false}, // a hump another follows
		{"Press control-C to abort or Enter to continue as root.", false},
		{"Finished tests in 66.1s, 13.1 tests/s, 23.5 assertions/s.", false},
		{"java.lang.AssertionError: boom", true},
		{"Failed 1 tests. Passed 6 tests.", false},         // a count of tests
		{"Failed!  - Failed:     1, Passed:    11", false}, // a label's count after spaces
	}
	for _, tt := range tests {
		f := features([]byte(tt.line))
		got := lineScore(f) >= 2 && f&fTally == 0
		if got != tt.strong {
			t.Errorf("%q: strong = %v, want %v (features %#x)", tt.line, got, tt.strong, f)
		}
	}
}

func TestPassedRetried(t *testing.T) {
	tests := []struct {
		line            string
		passed, retried bool
	}{
		{"error handling test 290 ... ok", true, false},
		{"✓ renders an error banner (3 ms)", true, false},
		{"PASSED tests/test_errors.py::test_error", true, false},
		{"test_error_path PASSED", true, false},
		{"attempt 1 failed, retrying in 2s", false, true},
		{"Failed to upload index.html. Trying again in 1 second.", false, true},
		{"not ok 2 - error handling", false, false},
		{"    informative error messages:                OK (0.02s)", true, false},
		{"TestErrorPaths\tPASS", true, false},
		{"error: the token is not ok", false, false},
		{"error: token is invalid", false, false},
	}
	for _, tt := range tests {
		if got := passed([]byte(tt.line)); got != tt.passed {
			t.Errorf("passed(%q) = %v, want %v", tt.line, got, tt.passed)
		}
		if got := retried([]byte(tt.line)); got != tt.retried {
			t.Errorf("retried(%q) = %v, want %v", tt.line, got, tt.retried)
		}
	}
}

func TestCountNear(t *testing.T) {
	type count struct{ Counted, Zero bool }
	tests := []struct {
		line string // the keyword is the first "error" or "fail" word in it
		want count
	}{
		{"2 failed, 10 passed", count{true, false}},
		{"3 errors generated.", count{true, false}},
		{"0 errors", count{true, true}},
		{"no errors found", count{true, true}},
		{"Failures: 1", count{true, false}},
		{"errors: 0", count{true, true}},
		{"errors=0", count{true, true}},
		{"npm error 404 Not Found", count{}},
		{"ERROR 1045 (28000): Access denied", count{}},
		{"attempt 3 failed: connection reset", count{}},
		{"10:00:01 error: could not connect", count{}},
	}
	for _, tt := range tests {
		low := []byte(tt.line)
		pos := -1
		for _, w := range [...]string{"error", "fail"} {
			if k := indexFold(low, w); k >= 0 && (pos < 0 || k < pos) {
				pos = k
			}
		}
		if pos < 0 {
			t.Fatalf("%q holds no keyword", tt.line)
		}
		end := pos
		for end < len(low) && isLetter(low[end]) {
			end++
		}
		var got count
		got.Counted, got.Zero = countNear(low[:pos], low[pos:end], low[end:])
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("countNear(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

// indexFold returns the first index of the lower-case ASCII text s in b,
// ignoring case, or -1.
func indexFold(b []byte, s string) int {
	for i := range b {
		if hasPrefixFold(b[i:], s) {
			return i
		}
	}
	return -1
}
