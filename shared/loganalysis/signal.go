package loganalysis

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// feature is a set of failure signals found in one line.
type feature uint32

const (
	fError     feature = 1 << iota // error, err, ERR!
	fFail                          // fail, failed, failure, failing, not ok
	fFatal                         // fatal
	fException                     // exception
	fPanic                         // panic, panicked
	fAbort                         // abort, aborted
	fKilled                        // killed, OOMKilled
	fTimeout                       // timeout, timed out, deadline exceeded
	fProblem                       // cannot, could not, unable, not found, no such, denied, ...
	fExpect                        // expected, assert, actual, but was
	fTrace                         // traceback
	fExit                          // exit, exited
	fWarn                          // warning
	fMark                          // ✗ ✖ ✘ ❌ (a failed check; xcpretty's error symbol is ❌)
	fBullet                        // ● (Jest's failed test header)
	fOOM                           // out of memory, oom
	fCrash                         // segmentation fault, core dumped
	fIssue                         // issues, offenses, violations, problems
	fLead                          // an error or failure word leads the line or is followed by ':'
	fTally                         // a failure word with a count: "2 failed", "Failures: 1"
	fCancel                        // cancel, cancelled, cancellation
	fLost                          // lost
	fSignal                        // SIGKILL, SIGTERM, SIGINT
	fRetry                         // retry, retrying, trying again
	fSkip                          // skip, skipped, xfail, ignored: see notCounted
)

// charClass is 1 for lower-case and 2 for upper-case ASCII letters.
var charClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = 1, 2
	}
	return t
}()

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// eqFold reports whether w equals the lower-case ASCII word s, ignoring case.
func eqFold(w []byte, s string) bool {
	if len(w) != len(s) {
		return false
	}
	for i := range len(w) {
		if w[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether b starts with the lower-case ASCII text s,
// ignoring case.
func hasPrefixFold(b []byte, s string) bool {
	if len(b) < len(s) {
		return false
	}
	for i := range len(s) {
		c := b[i]
		if isLetter(c) {
			c |= 0x20
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// features scans a cleaned line for failure signals. It looks only at word
// starts (and at camel-case humps, so AssertionError counts as an error),
// found eight bytes at a time, which keeps it fast on ordinary output: only
// the few words whose first three letters could begin a signal word go on to
// wordAt.
func features(line []byte) feature {
	var f feature
	n := min(len(line), 1024)
	line = line[:n]
	for k := bytes.IndexByte(line, 0xe2); k >= 0 && k+2 < n; {
		if line[k+1] == 0x9c && line[k+2] >= 0x96 && line[k+2] <= 0x98 || line[k+1] == 0x9d && line[k+2] == 0x8c {
			f |= fMark
		} else if line[k+1] == 0x97 && line[k+2] == 0x8f {
			f |= fBullet
		}
		j := bytes.IndexByte(line[k+1:], 0xe2)
		if j < 0 {
			break
		}
		k += 1 + j
	}
	words := 0
	var prevJoined, prevLower uint64
	for i := 0; i < n; i += 8 {
		var x uint64
		switch {
		case i+8 <= n:
			x = binary.LittleEndian.Uint64(line[i:])
		case n >= 8:
			// The last bytes, as the low bytes of the line's last eight
			// with zeros above them.
			x = binary.LittleEndian.Uint64(line[n-8:]) >> (8 * (8 - (n - i)))
		default:
			// A line shorter than eight bytes, byte by byte: no call to
			// copy in this loop.
			for k := n - 1; k >= i; k-- {
				x = x<<8 | uint64(line[k])
			}
		}
		// Bit 7 of each byte marks an ASCII letter, and an upper-case one:
		// a letter whose bit 5 (moved up to bit 7) is clear.
		ascii := ^x & hi8
		lc := (x | 0x20*one8) & low8
		letters := (lc + (0x80-'a')*one8) &^ (lc + (0x80-'z'-1)*one8) & ascii
		upper := letters &^ (x << 2)
		lower := letters &^ upper
		// A word starts at a letter after anything but a letter, a digit or
		// an underscore (identifiers), or at a camel-case hump.
		uc := x & low8
		digits := (uc + (0x80-'0')*one8) &^ (uc + (0x80-'9'-1)*one8) & ascii
		us := x ^ '_'*one8
		joined := letters | digits | (us-one8)&^us&hi8
		starts := letters&^(joined<<8|prevJoined>>56) | upper&(lower<<8|prevLower>>56)
		prevJoined, prevLower = joined, lower
		for ; starts != 0; starts &= starts - 1 {
			pos := i + bits.TrailingZeros64(starts)/8
			if pos+8 <= n {
				// A quick filter on the low five bits of the word's first
				// three bytes (the case bit is the sixth): it lets through
				// every word wordAt accepts, and few others.
				v := binary.LittleEndian.Uint64(line[pos:])
				if k := uint(v&0x1f | v>>3&0x3e0 | v>>6&0x7c00); tripleSet[k>>6]&(1<<(k&63)) == 0 {
					words++
					continue
				}
			}
			f |= wordAt(line, pos, words)
			words++
		}
	}
	return f
}

// wordAt returns the signals of the word that starts at line[pos], the
// words-th word of the line.
func wordAt(line []byte, pos, words int) feature {
	n := len(line)
	if pos+2 >= n {
		return 0
	}
	// Only words whose first three letters begin a signal word are looked
	// at ("no" is the one shorter signal word). The first two letters,
	// lower-cased, as they sit in a little-endian word.
	c, c1, c2 := line[pos], line[pos+1], line[pos+2]
	if p := uint(c|0x20)&0x7f | uint(c1|0x20)&0x7f<<8; pairSet[p>>6]&(1<<(p&63)) == 0 {
		return 0
	}
	if charClass[c1] == 0 {
		return 0 // the pair matched only because a non-ASCII byte lost its high bit
	}
	if charClass[c2] == 0 {
		if c|0x20 != 'n' || c1|0x20 != 'o' {
			return 0
		}
	} else if k := uint(c|0x20-'a')*676 + uint(c1|0x20-'a')*26 + uint(c2|0x20-'a'); prefixSet[k>>6]&(1<<(k&63)) == 0 {
		return 0
	}
	j := pos + 1
	for prev := charClass[c]; j < n; j++ {
		cj := charClass[line[j]]
		if cj == 0 || cj > prev {
			break
		}
		prev = cj
	}
	w := line[pos:j]
	if j < n && isUpper(line[j]) && charClass[line[j-1]] == 1 {
		// A hump that another follows: TestErrorHandling,
		// FailureAccrualFactory. Only the last one names a kind, as in
		// AssertionError.
		return 0
	}
	g := wordFeature(w, line[j:])
	if g&(fAbort|fCancel) != 0 && pos >= 3 && hasPrefixFold(line[pos-3:pos], "to ") {
		g &^= fAbort | fCancel // an instruction: "press Ctrl-C to abort"
	}
	if g == fExpect && (eqFold(w, "assertions") || eqFold(w, "asserts")) {
		g = 0 // a count in a summary: "1555 assertions", "Assertions: 291"
	}
	if g&(fError|fFail|fFatal|fException|fPanic) != 0 {
		if counted, zero := countNear(line[:pos], w, line[j:]); zero {
			g &^= fError | fFail
		} else if counted {
			g |= fTally
		} else if words < 2 || (j < n && line[j] == ':') {
			g |= fLead
		}
	}
	return g
}

// signalPrefixes are the first three letters of every signal word
// (wordFeature), lower case; "no" is the only shorter one.
var signalPrefixes = [...]string{
	"abo", "ass", "but", "bro", "can", "cou", "cor", "con", "den", "dea", "err", "exc", "exp",
	"exi", "fai", "fat", "inv", "iss", "kil", "los", "mis", "not", "out", "oom", "off", "pan", "pro",
	"ref", "ret", "seg", "sig", "tim", "tra", "try", "una", "und", "unr", "une", "unk", "vio", "war",
	"ski", "xfa", "ign",
}

// prefixSet holds signalPrefixes as bits indexed by three letters.
var prefixSet = func() (t [26*26*26/64 + 1]uint64) {
	for _, p := range signalPrefixes {
		k := int(p[0]-'a')*676 + int(p[1]-'a')*26 + int(p[2]-'a')
		t[k/64] |= 1 << (k % 64)
	}
	return t
}()

// tripleSet holds the low five bits of the three letters of every
// signalPrefixes entry, and of "no" followed by any byte, as bits indexed by
// fifteen bits: first letter lowest.
var tripleSet = func() (t [1 << 15 / 64]uint64) {
	set := func(a, b, c byte) {
		k := int(a&0x1f) | int(b&0x1f)<<5 | int(c&0x1f)<<10
		t[k/64] |= 1 << (k % 64)
	}
	for _, p := range signalPrefixes {
		set(p[0], p[1], p[2])
	}
	for c := range byte(32) {
		set('n', 'o', c)
	}
	return t
}()

// pairSet holds the first two letters of signalPrefixes (and "no") as bits
// indexed by the two lower-case bytes, the second in the high byte (as they
// sit in a little-endian word).
var pairSet = func() (t [1 << 16 / 64]uint64) {
	for _, p := range append(signalPrefixes[:], "no") {
		k := int(p[1])<<8 | int(p[0])
		t[k/64] |= 1 << (k % 64)
	}
	return t
}()

const (
	hi8  = 0x8080808080808080
	low8 = 0x7f7f7f7f7f7f7f7f
	one8 = 0x0101010101010101
)

// wordFeature classifies one word; rest is the text after it.
func wordFeature(w, rest []byte) feature {
	switch w[0] | 0x20 {
	case 'a':
		switch {
		case hasPrefixFold(w, "abort"):
			return fAbort
		case hasPrefixFold(w, "assert"):
			return fExpect
		}
	case 'b':
		if eqFold(w, "but") && (hasPrefixFold(rest, " was") || hasPrefixFold(rest, " got")) {
			return fExpect
		}
		if eqFold(w, "broken") {
			return fProblem
		}
	case 'c':
		switch {
		case eqFold(w, "cannot"), eqFold(w, "couldn"), eqFold(w, "conflict"):
			return fProblem
		case eqFold(w, "could") && hasPrefixFold(rest, " not"):
			return fProblem
		case eqFold(w, "can") && hasPrefixFold(rest, "'t"):
			return fProblem
		case eqFold(w, "core") && hasPrefixFold(rest, " dumped"):
			return fCrash
		case hasPrefixFold(w, "cancel"):
			return fCancel
		}
	case 'd':
		switch {
		case eqFold(w, "denied"):
			return fProblem
		case eqFold(w, "deadline") && hasPrefixFold(rest, " exceeded"):
			return fTimeout
		}
	case 'e':
		switch {
		case eqFold(w, "err"), eqFold(w, "error"), eqFold(w, "errors"), eqFold(w, "errored"):
			if len(rest) > 1 && (rest[0] == '.' && isLetter(rest[1]) || rest[0] == '/' || rest[0] == '_' ||
				rest[0] == '-' && isLetter(rest[1])) {
				return 0 // a file, package or identifier name
			}
			return fError
		case hasPrefixFold(w, "exception"):
			return fException
		case hasPrefixFold(w, "expect"):
			return fExpect
		case eqFold(w, "exit"), eqFold(w, "exited"), eqFold(w, "exiting"):
			return fExit
		}
	case 'f':
		switch {
		case eqFold(w, "fail"), eqFold(w, "failed"), eqFold(w, "failure"), eqFold(w, "failures"),
			eqFold(w, "failing"), eqFold(w, "fails"):
			if len(rest) > 1 && (rest[0] == '.' && isLetter(rest[1]) || rest[0] == '/' || rest[0] == '_' ||
				rest[0] == '-' && isLetter(rest[1])) {
				return 0
			}
			return fFail
		case eqFold(w, "fatal"):
			return fFatal
		}
	case 'i':
		switch {
		case eqFold(w, "invalid"):
			return fProblem
		case eqFold(w, "issues"):
			return fIssue
		}
	case 'k':
		if eqFold(w, "killed") {
			return fKilled
		}
	case 'l':
		if eqFold(w, "lost") {
			return fLost
		}
	case 'm':
		if eqFold(w, "missing") || eqFold(w, "mismatch") {
			return fProblem
		}
	case 'n':
		switch {
		case eqFold(w, "not") && hasPrefixFold(rest, " found"):
			return fProblem
		case eqFold(w, "not") && hasPrefixFold(rest, " ok "):
			return fFail
		case eqFold(w, "no") && hasPrefixFold(rest, " such "):
			return fProblem
		}
	case 'o':
		switch {
		case eqFold(w, "out") && hasPrefixFold(rest, " of memory"):
			return fOOM
		case hasPrefixFold(w, "oom"):
			return fOOM | fKilled
		case hasPrefixFold(w, "offense"):
			return fIssue
		}
	case 'p':
		switch {
		case eqFold(w, "panic"), eqFold(w, "panicked"):
			return fPanic
		case eqFold(w, "problem"):
			return fProblem
		}
	case 'r':
		switch {
		case eqFold(w, "refused"):
			return fProblem
		case hasPrefixFold(w, "retr") && (eqFold(w, "retry") || eqFold(w, "retrying") || eqFold(w, "retries")):
			return fRetry
		}
	case 's':
		if eqFold(w, "segmentation") || eqFold(w, "sigsegv") || eqFold(w, "segv") {
			return fCrash
		}
		if eqFold(w, "sigkill") || eqFold(w, "sigterm") || eqFold(w, "sigint") {
			return fSignal
		}
	case 't':
		switch {
		case eqFold(w, "timeout"), eqFold(w, "timedout"):
			return fTimeout
		case eqFold(w, "timed") && hasPrefixFold(rest, " out"):
			return fTimeout
		case eqFold(w, "traceback"):
			return fTrace
		case eqFold(w, "trying") && hasPrefixFold(rest, " again"):
			return fRetry
		}
	case 'u':
		switch {
		case eqFold(w, "unknown") && hasPrefixFold(rest, " revision"):
			return fProblem
		case eqFold(w, "unable"), eqFold(w, "undefined"), eqFold(w, "unresolved"), eqFold(w, "unexpected"):
			return fProblem
		}
	case 'v':
		if hasPrefixFold(w, "violation") {
			return fIssue
		}
	case 'w':
		if eqFold(w, "warning") || eqFold(w, "warn") {
			return fWarn
		}
	case 'x':
		if hasPrefixFold(w, "xfail") {
			return fSkip
		}
	}
	switch {
	case hasPrefixFold(w, "skip"), eqFold(w, "ignored"):
		return fSkip
	}
	return 0
}

// countNear reports whether the keyword w between before and after comes
// with a count, and whether that count is zero ("0 errors", "no errors",
// "without errors"). A count is a number before the word ("2 failed",
// "3 errors") or after it as a label's value ("Failures: 1", "errors: 0");
// a number right after the word is not one ("error 404", "ERROR 1045").
func countNear(before, w, after []byte) (counted, zero bool) {
	for _, neg := range [...]string{"no ", "without ", "zero "} {
		if len(before) >= len(neg) && hasPrefixFold(before[len(before)-len(neg):], neg) &&
			(len(before) == len(neg) || !isLetter(before[len(before)-len(neg)-1])) {
			return true, true
		}
	}
	if n := len(before); n >= 2 && before[n-1] == ' ' && isDigit(before[n-2]) {
		// A whole number, not the end of a time or a version: "2 failed",
		// not "10:00:01 error" or "1.904 error".
		i := n - 2
		for i > 0 && isDigit(before[i-1]) {
			i--
		}
		// "attempt 3 failed" and "step 2 failed" number the thing that
		// failed; they do not count failures.
		numbered := i >= 2 && before[i-1] == ' ' && before[i-2] >= 'a' && before[i-2] <= 'z' &&
			(eqFold(w, "failed") || eqFold(w, "errored"))
		if !numbered && (i == 0 || before[i-1] == ' ' || before[i-1] == '(' || before[i-1] == '[' || before[i-1] == ',') {
			return true, before[n-2] == '0' && i == n-2
		}
	}
	// A number after the word counts only after a label's colon (or '='):
	// "Failures: 1", "errors=0". Right after the word it is a status or a
	// code, as in npm's "npm error 404 Not Found".
	// "Failed 1 tests.", "Failed test:  3": a count of tests.
	for _, unit := range [...]string{" test:", " tests:"} {
		if hasPrefixFold(after, unit) {
			after = after[len(unit)-1:]
			break
		}
	}
	if len(after) > 2 && after[0] == ' ' && isDigit(after[1]) {
		n := digits(after[1:])
		if hasPrefixFold(after[1+n:], " test") {
			return true, after[1] == '0' && n == 1
		}
	}
	i, label := 0, false
	for i < len(after) && i < 10 && (after[i] == ':' || after[i] == ' ' || after[i] == '=') {
		label = label || after[i] != ' '
		i++
	}
	if label && i < len(after) && isDigit(after[i]) {
		return true, after[i] == '0' && (i+1 == len(after) || !isDigit(after[i+1]))
	}
	return false, false
}
