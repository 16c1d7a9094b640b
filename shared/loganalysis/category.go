package loganalysis

import "bytes"

// Category indexes for votes.
const (
	voteTest = iota
	voteCompile
	voteLint
	voteDependency
	voteConfig
	voteInfrastructure
	voteTimeout
	voteOOM
	numCategories
)

// voteCrash is the vote slot, after the categories, that counts signs of a
// program crashing at run time: a traceback, a panic, a fatal signal, an
// uncaught exception. A crash names no category by itself: it is a test
// failure only inside a test run (see crashVerdict).
const (
	voteCrash = numCategories
	numVotes  = numCategories + 1
)

var voteCategory = [numCategories]Category{
	CategoryTest, CategoryCompile, CategoryLint, CategoryDependency, CategoryConfig,
	CategoryInfrastructure, CategoryTimeout, CategoryOOM,
}

// categoryHints are phrases that say what kind of failure a line is about.
// They are matched against the lower-cased line.
var categoryHints = []struct {
	cat    int
	w      int
	phrase string
}{
	// Tests.
	{voteTest, 2, "assert"}, {voteTest, 1, "expected"}, {voteTest, 2, "--- fail"},
	{voteTest, 2, "tests failed"}, {voteTest, 2, "test failed"}, {voteTest, 1, " failing"},
	{voteTest, 2, "failed tests"}, {voteTest, 1, "test"}, {voteTest, 2, "not ok "},
	{voteTest, 2, "sanitizer"}, {voteTest, 2, "segv"}, {voteTest, 2, "segmentation fault"},
	{voteTest, 1, "but was"}, {voteTest, 1, "to equal"}, {voteTest, 1, "spec"},
	{voteTest, 2, "_suite"}, // Erlang common_test suites are modules named *_SUITE
	// Compilation.
	{voteCompile, 1, "error:"}, {voteCompile, 2, "compil"}, {voteCompile, 2, "cannot find symbol"},
	{voteCompile, 2, "undefined"}, {voteCompile, 1, "build failed"}, {voteCompile, 2, "error ts"},
	{voteCompile, 2, "error["}, {voteCompile, 1, "syntax"}, {voteCompile, 1, "type"},
	{voteCompile, 3, "werror"}, {voteCompile, 3, "warnings being treated as errors"},
	{voteCompile, 3, "warnings as errors"}, {voteCompile, 2, "linker"}, {voteCompile, 2, "ld returned"}, {voteCompile, 1, "declared"},
	// Lint.
	{voteLint, 3, "lint"}, {voteLint, 3, "offense"}, {voteLint, 2, "prettier"}, {voteLint, 2, "style"},
	{voteLint, 2, "would reformat"}, {voteLint, 2, "problems ("}, {voteLint, 3, "rubocop"},
	{voteLint, 3, "flake8"}, {voteLint, 3, "shellcheck"}, {voteLint, 2, "format"},
	// Link checkers, formatters and import sorters say so in their findings.
	{voteLint, 3, "broken link"}, {voteLint, 3, "dead link"}, {voteLint, 3, "duplicate link"},
	{voteLint, 3, "gofmt"}, {voteLint, 3, "goimports"}, {voteLint, 3, "standard:"},
	// Dependencies and fetching.
	{voteDependency, 3, "could not resolve"}, {voteDependency, 3, "unable to resolve"},
	{voteDependency, 3, "no matching version"}, {voteDependency, 3, "could not find a version"},
	{voteDependency, 3, "no matching distribution"}, {voteDependency, 3, "artifact"},
	{voteDependency, 2, "failed to fetch"}, {voteDependency, 2, "failed to download"},
	{voteDependency, 2, "unable to fetch"}, {voteDependency, 2, "could not fetch"},
	{voteDependency, 3, "unknown revision"}, {voteDependency, 2, "module"},
	{voteDependency, 3, "could not find gem"}, {voteDependency, 3, "manifest unknown"},
	{voteDependency, 3, "pull access denied"}, {voteDependency, 3, "requirements could not be resolved"},
	{voteDependency, 3, "unable to locate package"},
	{voteDependency, 2, "econnreset"}, {voteDependency, 2, "etimedout"}, {voteDependency, 2, "enotfound"},
	{voteDependency, 2, "404"}, {voteDependency, 2, "dependenc"}, {voteDependency, 2, "package"},
	{voteDependency, 1, "download"}, {voteDependency, 2, "registry"}, {voteDependency, 2, "installing"},
	{voteDependency, 2, "install"}, {voteDependency, 2, "version solving failed"},
	{voteDependency, 3, "no module named"}, {voteDependency, 3, "modulenotfounderror"},
	{voteDependency, 2, "importerror"}, {voteDependency, 3, "cannot find module"},
	// Configuration.
	{voteConfig, 2, "no such file or directory"}, {voteConfig, 8, "command not found"}, {voteConfig, 3, "unbound variable"},
	{voteConfig, 2, "configuration"}, {voteConfig, 2, "config"}, {voteConfig, 2, "unknown option"},
	{voteConfig, 2, "unrecognized"}, {voteConfig, 3, "environment variable"},
	{voteConfig, 2, "permission denied"}, {voteConfig, 2, "not defined"}, {voteConfig, 2, "yaml"},
	{voteConfig, 2, "no rakefile"}, {voteConfig, 3, "secret"}, {voteConfig, 3, "credential"}, {voteConfig, 2, "missing required"},
	{voteConfig, 3, "unauthorized"}, {voteConfig, 3, "authentication failed"}, {voteConfig, 3, "incorrect username or password"},
	{voteConfig, 3, "repository not found"}, {voteConfig, 3, "could not read from remote repository"},
	{voteConfig, 3, "permission denied (publickey)"}, {voteConfig, 2, "repository '"}, {voteConfig, 1, "usage:"},
	{voteConfig, 2, "unknown field"}, {voteConfig, 2, "validationerror"},
	// Infrastructure.
	{voteInfrastructure, 4, "no space left on device"}, {voteInfrastructure, 4, "agent lost"},
	{voteInfrastructure, 4, "lost agent"}, {voteInfrastructure, 3, "cannot connect to the docker daemon"},
	{voteInfrastructure, 2, "service unavailable"}, {voteInfrastructure, 3, "econnrefused"},
	{voteInfrastructure, 2, "connection refused"}, {voteInfrastructure, 2, "disk quota"},
	// The network: a host name that does not resolve is the runner's
	// network or DNS, not the project ("could not resolve" alone is a
	// dependency resolver's).
	{voteInfrastructure, 5, "could not resolve host"}, {voteInfrastructure, 3, "name resolution"},
	{voteInfrastructure, 3, "name or service not known"}, {voteInfrastructure, 3, "getaddrinfo"},
	{voteInfrastructure, 3, "eai_again"}, {voteInfrastructure, 3, "network is unreachable"},
	// Timeouts.
	{voteTimeout, 3, "timed out"}, {voteTimeout, 2, "timeout"}, {voteTimeout, 3, "deadline exceeded"},
	{voteTimeout, 3, "no output has been received"}, {voteTimeout, 3, "progress deadline"},
	// Memory.
	{voteOOM, 4, "out of memory"}, {voteOOM, 4, "oomkilled"}, {voteOOM, 3, "cannot allocate memory"},
	{voteOOM, 3, "memoryerror"},
}

// voteCategories adds the category hints in one candidate line to votes.
func voteCategories(votes *[numVotes]int, line []byte) {
	var buf [512]byte
	n := copy(buf[:], line)
	low := buf[:n]
	for i, c := range low {
		if c >= 'A' && c <= 'Z' {
			low[i] = c + 32
		}
	}
	for _, h := range categoryHints {
		if bytes.Contains(low, []byte(h.phrase)) {
			votes[h.cat] += h.w
		}
	}
}

// globalSignals are whole-job signs that override what the excerpt says:
// the job ran out of memory, lost its agent, ran out of disk or time.
type globalSignals struct {
	oom, lost, disk, timeout bool
	cancelled                bool // the job was cancelled: a later SIGKILL is not memory
}

func (g *globalSignals) exit(status int, known bool) {
	switch {
	case !known:
	case status == 137 && !g.cancelled:
		g.oom = true
	case status == -1:
		g.lost = true
	}
}

// scan looks at one signalling line for whole-job signs.
func (g *globalSignals) scan(t []byte, f feature) {
	if f&(fOOM|fKilled|fTimeout|fProblem) == 0 {
		return
	}
	switch {
	case f&fOOM != 0 && (bytes.Contains(t, []byte("OOMKilled")) || bytes.Contains(t, []byte("ut of memory"))):
		g.oom = true
	case f&fKilled != 0 && (bytes.Equal(bytes.TrimSpace(t), []byte("Killed")) ||
		bytes.Contains(t, []byte("signal: killed")) || bytes.Contains(t, []byte("exit code 137")) ||
		bytes.Contains(t, []byte("status 137"))):
		g.oom = true
	case f&fTimeout != 0 && (bytes.Contains(t, []byte("Job timed out")) ||
		bytes.Contains(t, []byte("exceeded the maximum")) || bytes.Contains(t, []byte("job timed out")) ||
		bytes.Contains(t, []byte("timed out after")) && bytes.Contains(t, []byte("minutes"))):
		g.timeout = true
	case f&fProblem != 0 && bytes.Contains(t, []byte("No space left on device")):
		g.disk = true
	}
}

// commandHints are words in the failing command or its log group that name
// a kind of check: a linter, formatter, link or content checker run by name
// says what its failure is. Test runners are not listed: "npm test" and
// "make check" run linters as often as tests.
var commandHints = []struct {
	cat    int
	w      int
	phrase string
}{
	{voteLint, 3, "lint"}, {voteLint, 3, "rubocop"}, {voteLint, 3, "prettier"}, {voteLint, 3, "stylelint"},
	{voteLint, 3, "awesome_bot"}, {voteLint, 3, "markdown"}, {voteLint, 3, "gofmt"}, {voteLint, 3, "goimports"},
	{voteLint, 3, "flake8"}, {voteLint, 3, "black --check"}, {voteLint, 3, "shellcheck"}, {voteLint, 3, "spell"},
	{voteLint, 2, "integrity"}, {voteLint, 3, "fmt --check"}, {voteLint, 3, "format --check"},
	{voteLint, 3, "--check-format"}, {voteLint, 3, "stylecheck"}, {voteLint, 3, "checkstyle"},
}

// voteCommand adds the hints in the failing command and log group to votes.
func voteCommand(votes *[numVotes]int, command, section string) {
	var buf [512]byte
	n := copy(buf[:], command)
	n += copy(buf[n:], " ")
	n += copy(buf[n:], section)
	low := buf[:n]
	for i, c := range low {
		if c >= 'A' && c <= 'Z' {
			low[i] = c + 32
		}
	}
	for _, h := range commandHints {
		if bytes.Contains(low, []byte(h.phrase)) {
			votes[h.cat] += h.w
		}
	}
}
