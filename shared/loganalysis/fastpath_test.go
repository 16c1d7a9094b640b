package loganalysis

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// randomLine builds a line from pieces that sit at the edges of the fast
// paths: ASCII and Unicode spaces, controls, DEL, TAB, multi-byte
// characters and letters.
func randomLine(r *rand.Rand, pieces []string, n int) []byte {
	var b []byte
	for range r.IntN(n) {
		b = append(b, pieces[r.IntN(len(pieces))]...)
	}
	return b
}

func TestTrimSpaceAsBytesTrimSpace(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{" ", "\t", "\r", "\v", "\u00a0", "\u0085", "\u1680", "\u2009", "\u205f", "\u3000",
		"✓", "é", "\xe2", "\xc2", "a", "x y"}
	for range 50000 {
		b := randomLine(r, pieces, 8)
		got, want := trimSpace(b), bytes.TrimSpace(b)
		if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("trimSpace(%q) = %q, want %q", b, got, want)
		}
	}
}

func TestPlainRunStopsAtFirstSpecialByte(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "Z", " ", "\t", "\x00", "\x1b", "\x1f", "\x7f", "\x80", "\xff", "✓", "0123456"}
	for range 50000 {
		b := randomLine(r, pieces, 24)
		want := 0
		for want < len(b) && !specialByte[b[want]] {
			want++
		}
		if got := plainRun(b); got != want {
			t.Fatalf("plainRun(%q) = %d, want %d", b, got, want)
		}
	}
}

// TestFeaturesFilterKeepsSignalWords checks that the quick filter on a
// word's first three bytes lets every signal word through, wherever it sits
// in an eight-byte chunk and whatever its case.
func TestFeaturesFilterKeepsSignalWords(t *testing.T) {
	t.Parallel()
	words := []string{"error", "ERROR", "Failed", "fatal", "Exception", "panic", "aborted", "killed",
		"timeout", "cannot", "expected", "Traceback", "exited", "warning", "oom", "segmentation",
		"issues", "cancelled", "lost", "SIGKILL", "retrying", "skipped", "xfail", "ignored"}
	for _, w := range words {
		want := features([]byte(w))
		if want == 0 {
			t.Fatalf("features(%q) = 0, want a signal", w)
		}
		for pad := range 9 {
			line := []byte(string(bytes.Repeat([]byte("."), pad)) + w + " in the middle of a longer line")
			if got, w := features(line), want&^fLead; got&w != w {
				t.Errorf("features(%q) = %b, want at least %b", line, got, want&^fLead)
			}
		}
	}
}
