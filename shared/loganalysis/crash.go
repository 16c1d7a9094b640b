package loganalysis

import "bytes"

// crashLine reports whether a line with features f shows a program crashing
// at run time: a traceback, a panic, a fatal signal.
func crashLine(f feature) bool { return f&(fPanic|fTrace|fCrash) != 0 }

// exceptionHead reports whether a line at the margin names an exception
// and its message, as a runtime prints it above the stack of an uncaught
// one: "TypeError: x", "Error: x", "IllegalStateException: x".
func exceptionHead(c []byte) bool {
	if len(c) == 0 || !isUpper(c[0]) {
		return false
	}
	i := 1
	for i < len(c) && isLetter(c[i]) {
		i++
	}
	w := c[:i]
	return (bytes.HasSuffix(w, []byte("Error")) || bytes.HasSuffix(w, []byte("Exception"))) &&
		(i == len(c) || c[i] == ':')
}

// crashVotes settles the votes of an excerpt that shows a crash (see
// voteCrash); rules holds the votes its lines got from the rules alone.
//
// A crash is a test failure only when a test run is evident (see testRun):
// then its crash votes count for tests. Outside a test run a crash is a bug
// in, or bad input to, the program that ran (a deploy script, a migration, a
// code generator), which no category names. Its words say nothing about
// tests or compilation ("AssertionError", "runtime error:"), so those votes
// are dropped unless a compiler diagnostic was found in it; only a named
// cause gives it a category: a missing module (dependency), memory, a network
// error. A crash that is a syntax error is the code failing to compile,
// in a test run or not. It reports whether the crash is outside a test run.
func crashVotes(votes *[numVotes]int, rules [numVotes]int, res *Result, best *cluster) (outside bool) {
	if votes[voteCrash] == 0 {
		return false
	}
	syntax := syntaxCrash(best)
	if testRun(res, best) {
		votes[voteTest] += votes[voteCrash]
		outside = false
	} else {
		votes[voteTest] = 0
		if rules[voteCompile] < 3 && !syntax {
			votes[voteCompile] = 0
		}
		outside = true
	}
	if syntax {
		votes[voteCompile] += 3
	}
	return outside
}

// syntaxCrash reports whether a crash is the runtime failing to parse the
// program ("SyntaxError: Unexpected token", "IndentationError"): the code
// did not compile, though no compiler ran.
func syntaxCrash(best *cluster) bool {
	for _, l := range best.lines {
		b := []byte(l)
		if bytes.Contains(b, []byte("SyntaxError")) || bytes.Contains(b, []byte("IndentationError")) {
			return true
		}
	}
	return false
}

// testRun reports whether a test runner is evident for a failure: the log
// names failing tests, or the command, the log group or the excerpt's lines
// name a test run, a test file or a test runner.
func testRun(res *Result, best *cluster) bool {
	if len(res.FailingTests) > 0 {
		return true
	}
	for _, s := range [...]string{res.Command, res.Section, best.command, best.section} {
		if namesTest([]byte(s)) {
			return true
		}
	}
	for _, l := range best.lines {
		if namesTest([]byte(l)) {
			return true
		}
	}
	return false
}

// testWords are the words that name a test run or a test file, as a whole
// word or as a part of a name: "go test", "Unit tests", "cart_test.go",
// "test_cart.py", "CartTest.java", "cart.spec.ts", "testing.tRunner", and the
// names of common test runners.
var testWords = [...]string{
	"test", "tests", "spec", "specs", "pytest", "unittest", "nosetests", "ctest", "rspec", "jest",
	"mocha", "jasmine", "karma", "vitest", "phpunit", "cucumber",
}

// namesTest reports whether b holds one of testWords as a word or as a part
// of a name. A part starts after anything but a lower-case letter (or at an
// upper-case hump: "CartTest") and ends before anything but a letter;
// "testing" counts only as Go's package ("testing.").
func namesTest(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i] | 0x20
		if c != 't' && c != 's' && c != 'p' && c != 'u' && c != 'n' && c != 'r' && c != 'j' &&
			c != 'm' && c != 'k' && c != 'v' && c != 'c' {
			continue
		}
		if i > 0 && b[i-1] >= 'a' && b[i-1] <= 'z' && !isUpper(b[i]) || i > 0 && isUpper(b[i-1]) && isUpper(b[i]) {
			continue // inside a word: "latest", "inspect", "LATEST"
		}
		for _, w := range testWords {
			if !hasPrefixFold(b[i:], w) {
				continue
			}
			j := i + len(w)
			if j < len(b) && isLetter(b[j]) {
				if w == "test" && hasPrefixFold(b[j:], "ing.") {
					return true
				}
				if isUpper(b[j]) && !isUpper(b[j-1]) {
					return true // a hump follows: "testSave", "TestSave"
				}
				continue
			}
			return true
		}
	}
	return false
}
