package loganalysis

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ecosystemWant is what the analysis of a log from one tool must show. The
// logs under testdata/ecosystems follow the output formats the tools
// document, with ordinary output mixed in: skipped, pending, inconclusive
// and expected-to-fail tests, warnings, passing results, retries and the
// wrapper lines that only report a command's exit status.
type ecosystemWant struct {
	category Category
	tests    []string // the failing tests, in order; nil when none are named
	excerpt  []string // text the first excerpt must hold
	not      []string // ordinary output the first excerpt must not hold
}

var ecosystems = map[string]ecosystemWant{
	"tap_prove": {CategoryTest, nil,
		[]string{"Failed test 'renders the title'", "expected: '<h1>Widgets</h1>'"},
		[]string{"skipped: no network", "Result: FAIL", "Dubious"}},
	"tap_raw": {CategoryTest, []string{"saves a widget"},
		[]string{"not ok 5 - saves a widget", "expected 201, got 500"},
		[]string{"# TODO", "# SKIP"}},
	"common_test": {CategoryTest, nil,
		[]string{"save_widget: FAILED", "badmatch"},
		[]string{"SKIPPED", "tc_user_skip", "Failures occurred"}},
	"common_test_console": {CategoryTest, []string{"widget_SUITE:save_widget"},
		[]string{"widget_SUITE:save_widget failed on line 42", "Reason: {badmatch,{error,enoent}}"},
		[]string{"SKIPPED", "One or more tests failed", "TEST COMPLETE"}},
	"go_test_parallel": {CategoryTest, []string{"TestStore", "TestStore/save"},
		[]string{"store_test.go:41: save widget: unexpected status", "want: 201 Created"},
		[]string{"--- PASS", "ok  \t"}},
	"rake_aborted": {CategoryCompile, nil,
		[]string{"rake aborted!", `Undefined variable: "$brand-primary"`},
		[]string{"Press control-C to abort", "INFO --"}},
	"standard_js": {CategoryLint, nil,
		[]string{"standard: Use JavaScript Standard Style", "/workdir/lib/widget.js:12:7: 'render' is assigned a value but never used."},
		[]string{"npm ERR!"}},
	"php_run_tests": {CategoryTest, nil,
		[]string{"FAIL widget_save() rejects an empty name"},
		[]string{"XFAIL", "SKIP ", "EXPECTED FAILED"}},
	"xcodebuild": {CategoryTest, []string{"WidgetsTests.WidgetTests.testSave"},
		[]string{"XCTAssertEqual failed"},
		[]string{"Test skipped", "passed ("}},
	"sbt_scalatest": {CategoryTest, []string{"should save to the store"},
		[]string{"*** FAILED ***", "500 did not equal 201"},
		[]string{"IGNORED", "(pending)", "TestsFailedException", "[warn]"}},
	"gradle_build": {CategoryTest, []string{"WidgetTest.savesToStore()"},
		[]string{"savesToStore() FAILED", "expected: <201> but was: <500>"},
		[]string{"SKIPPED", "PASSED", "Execution failed for task", "warning:"}},
	"dotnet_test": {CategoryTest, nil,
		[]string{"Failed Widgets.Tests.WidgetTests.SavesToStore", "Expected: 201"},
		[]string{"Skipped ", "Failed!  - Failed:"}},
	"msbuild": {CategoryCompile, nil,
		[]string{"error CS0103"},
		[]string{"Determining projects", "Restored "}},
	"pester": {CategoryTest, []string{"saves the widget"},
		[]string{"[-] saves the widget", "Expected 201, but got 500."},
		[]string{"[!]", "[?]", "[+]", "Tests Passed"}},
	"bazel": {CategoryTest, []string{"TestSave"},
		[]string{"--- FAIL: TestSave", "got 500, want 201"},
		[]string{"WARNING:", "FLAKY", "SKIPPED", "PASSED in"}},
	"nix": {CategoryCompile, nil,
		[]string{"'save_widget' undeclared"},
		[]string{"warning: Git tree", "these 2 derivations"}},
	"terraform": {CategoryCompile, nil,
		[]string{"Error: Reference to undeclared resource", "has not been declared in the root module"},
		[]string{"Warning: Argument is deprecated", "successfully initialized"}},
	"helm_kubectl": {CategoryConfig, nil,
		[]string{`unknown field "imagePullPolicyy"`},
		[]string{"Warning: autoscaling", "unchanged", "configured"}},
	"kubectl_rollout": {CategoryTimeout, nil,
		[]string{"exceeded its progress deadline"},
		[]string{"Waiting for deployment"}},
	"xcpretty": {CategoryCompile, nil,
		[]string{"❌  /Users/ci/Widgets/Sources/Store.swift:47:19: 'value' is inaccessible", "return result.value"},
		[]string{"⚠️", "is deprecated", "▸ Compiling"}},
	"jul_records": {CategoryTest, []string{"rejects an empty name"},
		[]string{"rejects an empty name *** FAILED ***", "500 did not equal 400"},
		[]string{"TimeoutException", "Failure(Rejected", "ServerApplicationError", "INFO:", "WARNING:"}},
	"buildkit": {CategoryCompile, nil,
		[]string{"cmd/widgets/main.go:12:2: undefined: run", "> [4/4] RUN go build"},
		[]string{"CACHED", "load build definition", "go vet"}},
}

func TestEcosystems(t *testing.T) {
	t.Parallel()
	eachLog(t, "testdata/ecosystems/*.log", ecosystems, func(t *testing.T, want ecosystemWant, res Result) {
		if res.Category != want.category {
			t.Errorf("category = %q, want %q (summary %q)", res.Category, want.category, res.Summary)
		}
		var names []string
		for _, ft := range res.FailingTests {
			names = append(names, ft.Name)
		}
		if want.tests != nil {
			if diff := cmp.Diff(want.tests, names); diff != "" {
				t.Errorf("failing tests (-want +got):\n%s", diff)
			}
		}
		if len(res.Excerpts) == 0 {
			t.Fatal("no excerpt")
		}
		x := res.Excerpts[0].Text
		for _, s := range want.excerpt {
			if !strings.Contains(x, s) {
				t.Errorf("first excerpt does not hold %q:\n%s", s, x)
			}
		}
		for _, s := range want.not {
			if strings.Contains(x, s) {
				t.Errorf("first excerpt holds ordinary output %q:\n%s", s, x)
			}
		}
	})
}
