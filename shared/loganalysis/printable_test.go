package loganalysis

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// randomBytes returns n bytes from a fixed seed.
func randomBytes(n int) string {
	r := rand.NewChaCha8([32]byte{'k', 'i', 't', 'e'})
	b := make([]byte, n)
	r.Read(b)
	return string(b)
}

func TestAnalyzeBinaryInput(t *testing.T) {
	junk := randomBytes(256 << 10)
	type want struct {
		Category Category
		Summary  string
		Excerpts []string
	}
	tests := []struct {
		name string
		in   string
		want want
	}{
		{"random bytes", junk, want{CategoryUnknown, noFailure, nil}},
		{"a signal word inside binary data", junk + "\n\x01\x02\x03\x04\x05 error: \x06\x07\x08\x0e\x0f\x10\x11\x12\x13\n" + junk,
			want{CategoryUnknown, noFailure, nil}},
		{"binary data with a header and a command", "--- \x01\x02\x03\x04\x05\x06\x07\x08\n$ \x01\x02\x03\x04\x05\x06\x07\n" + junk,
			want{CategoryUnknown, noFailure, nil}},
		{"printable lines after binary data", junk + "\nupload done\nall good\n",
			want{CategoryUnknown, noFailure, []string{"upload done\nall good"}}},
		{"a failure after binary data", junk + "\nfatal: checksum mismatch in widgets.tar\n",
			want{CategoryUnknown, "fatal: checksum mismatch in widgets.tar", []string{"fatal: checksum mismatch in widgets.tar"}}},
		{"an exit report after binary data", junk + "\n🚨 Error: The command exited with status 1\n",
			want{CategoryUnknown, "the command failed with exit status 1 and the log does not say why", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := analyzeString(t, tt.in)
			got := want{Category: res.Category, Summary: res.Summary}
			for _, e := range res.Excerpts {
				got.Excerpts = append(got.Excerpts, e.Text)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTextLike(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"error: undefined: x", true},
		{"\tat f (a.js:1:2)", true},
		{"✗ 2 tests failed — see ● below", true},
		{"Fehler: Datei M\xfcller nicht gefunden", true}, // Latin-1 in a UTF-8 log
		{"", true},
		{"\x01\x02\x03 error \x04\x05\x06\x07", false},
		{randomBytes(200), false},
	}
	for _, tt := range tests {
		if got := textLike([]byte(tt.in)); got != tt.want {
			t.Errorf("textLike(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestSummaryNeverBinary(t *testing.T) {
	// A failure whose strongest line is followed by binary output.
	in := "error: widget store failed\n" + strings.Repeat("\x01\x02\x03\x04 error \x05\x06\x07\x08\n", 3)
	res := analyzeString(t, in)
	if res.Summary != "error: widget store failed" {
		t.Errorf("summary = %q, want the printable failure line", res.Summary)
	}
}

// TestTextLikeBytes checks every byte value in every position of a
// nine-byte line (eight scanned at once, one after them): one unprintable
// byte in nine makes it binary.
func TestTextLikeBytes(t *testing.T) {
	for b := range 256 {
		for pos := range 9 {
			line := []byte("abcdefghi")
			line[pos] = byte(b)
			printable := b >= 0x20 && b < 0x7f || b == '\t'
			if got := textLike(line); got != printable {
				t.Errorf("textLike with byte %#x at %d = %v, want %v", b, pos, got, printable)
			}
		}
	}
}
