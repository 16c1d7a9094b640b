package loganalysis

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// categoryCases are logs in testdata/category that test one decision about
// the failure category each.
var categoryCases = map[string]Category{
	// A traceback outside a test run is a crash of the program that ran:
	// nothing names what kind of failure it is.
	"script_traceback": CategoryUnknown,
	// The same for a panic and an uncaught exception.
	"go_run_panic":      CategoryUnknown,
	"node_script_crash": CategoryUnknown,
	// An uncaught Ruby exception, in the form of Ruby 3.4 and of older Ruby.
	"ruby_script_crash":   CategoryUnknown,
	"ruby_backtick_crash": CategoryUnknown,
	// Inside a test run a crash is a failing test: the command says so, or
	// the stack goes through a test file.
	"go_test_panic":          CategoryTest,
	"traceback_in_test_file": CategoryTest,
	"rspec_ruby_crash":       CategoryTest,
	"minitest_ruby_crash":    CategoryTest,
	// A crash that names its cause takes the cause's category.
	"import_error_build": CategoryDependency,
	// A syntax error found at run time is code that does not compile.
	"js_syntax_error": CategoryCompile,
	// make's epilogue and npm's repeat a failure; they do not explain it.
	"make_after_c_error": CategoryCompile,
	"jest_npm_epilogue":  CategoryTest,
	// An exit report alone says nothing of the kind of failure.
	"actions_exit_only": CategoryUnknown,
	// Credentials the job lacks are configuration.
	"kubectl_unauthorized": CategoryConfig,
	// A host name that does not resolve is the network.
	"curl_resolve": CategoryInfrastructure,
}

func TestCategory(t *testing.T) {
	eachLog(t, "testdata/category/*.log", categoryCases, func(t *testing.T, want Category, res Result) {
		if diff := cmp.Diff(want, res.Category); diff != "" {
			t.Errorf("category (-want +got):\n%s\nsummary: %s", diff, res.Summary)
		}
	})
}

func TestNamesTest(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"go test ./...", true},
		{":jest: Unit tests", true},
		{"/workdir/cart/cart_test.go:18 +0x3f", true},
		{`File "/workdir/tests/test_cart.py", line 31`, true},
		{"at com.acme.CartTest.totals(CartTest.java:12)", true},
		{"src/cart.spec.ts", true},
		{"testing.tRunner(0xc000103040)", true},
		{"python -m pytest -x", true},
		{"bundle exec rspec", true},
		{"docker pull widgets:latest", false},
		{"inspect the LATEST release", false},
		{"go run ./cmd/migrate", false},
		{"specific testdata", false},
	}
	for _, tt := range tests {
		if got := namesTest([]byte(tt.in)); got != tt.want {
			t.Errorf("namesTest(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
