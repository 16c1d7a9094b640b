package loganalysis

import (
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLineReader(t *testing.T) {
	long := strings.Repeat("z", 200<<10)
	tests := []struct {
		name  string
		in    string
		want  []string
		bytes int64
	}{
		{"empty", "", nil, 0},
		{"one line without LF", "abc", []string{"abc"}, 3},
		{"final LF adds no line", "a\nb\n", []string{"a", "b"}, 4},
		{"CR stays", "a\r\nb", []string{"a\r", "b"}, 4},
		{"empty lines", "\n\n", []string{"", ""}, 2},
		{"long line is cut", long + "\nx\n", []string{long[:maxKeep], "x"}, int64(len(long)) + 3},
		{"long last line without LF", "x\n" + long, []string{"x", long[:maxKeep]}, int64(len(long)) + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := newLineReader(strings.NewReader(tt.in))
			var got []string
			for {
				l, err := lr.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(l))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if lr.bytes != tt.bytes || lr.lines != int64(len(tt.want)) {
				t.Errorf("bytes, lines = %d, %d; want %d, %d", lr.bytes, lr.lines, tt.bytes, len(tt.want))
			}
		})
	}
}

func TestFeatures(t *testing.T) {
	tests := []struct {
		in   string
		want feature
	}{
		{"all good here", 0},
		{"error: boom", fError | fLead},
		{"java.lang.AssertionError: expected", fError | fExpect | fLead},
		{"Tests run: 3, Failures: 0, Errors: 0", 0},
		{"0 failed, 3 passed", 0},
		{"see errors.go for details", 0},
		{"npm ERR! code E404", fError | fLead},
		{"--- FAIL: TestX", fFail | fLead},
		{"OOMKilled", fOOM | fKilled},
		{"the request timed out", fTimeout},
		{"✗ saves a widget", fMark},
		{"no such file or directory", fProblem},
		{"Segmentation fault (core dumped)", fCrash},
		{"W\xe1A W\xe5rror", 0}, // non-ASCII bytes are not letters
		{"naïve résumé error", fError},
	}
	for _, tt := range tests {
		if got := features([]byte(tt.in)); got != tt.want {
			t.Errorf("features(%q) = %b, want %b", tt.in, got, tt.want)
		}
	}
}
