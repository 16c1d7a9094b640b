package loganalysis

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello world", "hello world"},
		{"empty", "", ""},
		{"buildkite timestamp at start", "\x1b_bk;t=1700000000000\x07$ make test", "$ make test"},
		{"buildkite timestamp mid-line", "building\x1b_bk;t=1700000000001\x07 done", "building done"},
		{"timestamp ended by ST", "\x1b_bk;t=1\x1b\\ok", "ok"},
		{"colour", "\x1b[31;1mFAIL\x1b[0m TestX", "FAIL TestX"},
		{"cursor and erase", "\x1b[2K\x1b[1A\x1b[?25lstep", "step"},
		{"OSC hyperlink", "\x1b]8;;https://example.com\x07link\x1b]8;;\x07", "link"},
		{"carriage return redraw keeps the last", "10%\r50%\r100%", "100%"},
		{"redraw with colour", "\x1b[32m10%\x1b[0m\r\x1b[2K\x1b[32m100%\x1b[0m", "100%"},
		{"trailing CR of CRLF", "done\r", "done"},
		{"CR then only escapes", "done\r\x1b[0K", "done"},
		{"CR then escape then text", "old\r\x1b[0Knew", "new"},
		{"NUL and controls", "a\x00b\x08c\x7fd", "abcd"},
		{"tab kept", "a\tb", "a\tb"},
		{"invalid UTF-8 kept", "bad \xff\xfe byte", "bad \xff\xfe byte"},
		{"lone escape at end", "text\x1b", "text"},
		{"unterminated CSI", "text\x1b[31", "text"},
		{"charset designation", "\x1b(Bplain", "plain"},
		{"unicode kept", "🚨 Error: ✗ naïve", "🚨 Error: ✗ naïve"},
		{"GitHub Actions timestamp", "2026-11-20T10:00:09.2000000Z --- FAIL: TestX (0.00s)", "--- FAIL: TestX (0.00s)"},
		{"timestamp in whole seconds", "2026-11-20T10:00:09Z ok", "ok"},
		{"timestamp with offset", "2026-11-20T10:00:09.123+00:00 ok", "ok"},
		{"timestamp alone", "2026-11-20T10:00:09.2000000Z", ""},
		{"timestamp then escapes", "2026-11-20T10:00:09Z \x1b[36;1mgo test\x1b[0m", "go test"},
		{"timestamp after escapes", "\x1b[0m2026-11-20T10:00:09Z ok", "ok"},
		{"timestamp split by an escape", "2026-11-20T1\x1b[0m0:00:09Z ok", "ok"},
		{"two timestamps", "2026-11-20T10:00:09Z 2026-11-20T10:00:10Z ok", "ok"},
		{"timestamp mid-line kept", "at 2026-11-20T10:00:09Z ok", "at 2026-11-20T10:00:09Z ok"},
		{"timestamp glued to text kept", "2026-11-20T10:00:09Zok", "2026-11-20T10:00:09Zok"},
		{"date only kept", "2026-11-20 done", "2026-11-20 done"},
		{"local time kept", "2026-11-20T10:00:09 done", "2026-11-20T10:00:09 done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Clean(nil, []byte(tt.in)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Clean(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestCleanAppends(t *testing.T) {
	got := string(Clean([]byte("prefix:"), []byte("\x1b[1mbold\x1b[0m")))
	if diff := cmp.Diff("prefix:bold", got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPlainRun(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abcdefghijklmnop", 16},
		{"abcdefgh\x1bijk", 8},
		{"abc\x7fdefghijk", 3},
		{"abcdefghij\tk", 12},
		{"ÿÿÿÿÿÿÿÿ\x00", 16},
	}
	for _, tt := range tests {
		if got := plainRun([]byte(tt.in)); got != tt.want {
			t.Errorf("plainRun(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b_bk;t=1\x07x", "a\rb\rc", "\x1b[31mred", "\x1b]0;t\x1b\\x",
		"\x1b", "\r", "x\r\x1b[0K", "\xff\x00\x1b[", "2026-11-20T10:00:09.2000000Z x",
		"2026-11-20T1\x1b[0m0:00:09Z 2026-11-20T10:00:09+00:00 y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.ReplaceAll(line, []byte("\n"), nil)
		got := Clean(nil, line)
		if len(got) > len(line) {
			t.Fatalf("Clean grew the line: %d > %d bytes", len(got), len(line))
		}
		for _, c := range got {
			if c < 0x20 && c != '\t' || c == 0x7f {
				t.Fatalf("Clean(%q) = %q keeps control byte %#x", line, got, c)
			}
		}
		// Cleaning is idempotent.
		if again := Clean(nil, got); !bytes.Equal(again, got) {
			t.Fatalf("Clean(Clean(%q)) = %q, want %q", line, again, got)
		}
	})
}
