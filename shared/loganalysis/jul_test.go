package loganalysis

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJULRecordQuietLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines string
		want  []bool
	}{
		{"info record with a stack",
			"Mar 22, 2011 1:11:31 PM MyClass stop\nINFO: closed\njava.io.IOException: reset\n\tat MyClass.run(MyClass.java:9)\nCaused by: x.Y: z\n\t... 3 more\nnext line",
			[]bool{false, false, true, true, true, true, false}},
		{"warning record, any toString",
			"Jul 30, 2019 12:41:45 AM a.b.Monitor log\nWARNING: propagated\nFailure(Rejected) with Service -> x\n[info] - next test",
			[]bool{false, false, true, false}},
		{"severe record is the failure",
			"Mar 22, 2011 1:11:31 PM MyClass fatal\nSEVERE: several message with an exception\njava.lang.IllegalArgumentException: invalid argument\n\tat MyClass.mash(MyClass.java:9)",
			[]bool{false, false, false, false}},
		{"a level line without the header is another tool's",
			"Analyzing: target //widgets:test\nINFO: Build completed, 1 test FAILED\nFAIL: //widgets:test (see test.log)",
			[]bool{false, false, false}},
		{"a line with its own log level ends the record",
			"Mar 22, 2011 1:11:31 PM MyClass stop\nINFO: closed\n[info] - x *** FAILED ***",
			[]bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r julRecord
			var got []bool
			for _, l := range strings.Split(tt.lines, "\n") {
				got = append(got, r.line([]byte(l)))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("quiet lines (-want +got):\n%s", diff)
			}
		})
	}
}
