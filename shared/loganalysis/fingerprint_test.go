package loganalysis

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFingerprintStableAcrossBuilds(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"timestamps and durations",
			"[12:01:02] --- FAIL: TestSave (0.03s)\n    save_test.go:42: got 500\nFAIL\tgithub.com/acme/w\t0.204s\n",
			"[18:44:59] --- FAIL: TestSave (1.93s)\n    save_test.go:42: got 500\nFAIL\tgithub.com/acme/w\t3.871s\n"},
		{"Buildkite markers and colour",
			"\x1b_bk;t=1700000000000\x07\x1b[31mError: connect ECONNREFUSED 10.0.3.7:5432\x1b[0m\n",
			"\x1b_bk;t=1800000000000\x07Error: connect ECONNREFUSED 10.0.9.1:5432\n"},
		{"hex ids and temp paths",
			"Error: open /tmp/build-8f3a2c1d/cache.db: permission denied (container 4f9a1c2e7b3d)\n",
			"Error: open /tmp/build-77aa01fe/cache.db: permission denied (container 0c1d2e3f4a5b)\n"},
		{"pytest in another checkout",
			"FAILED tests/test_w.py::test_save - assert 500 == 201\n",
			"FAILED tests/test_w.py::test_save - assert 503 == 201\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := analyzeString(t, tt.a), analyzeString(t, tt.b)
			if a.Fingerprint != b.Fingerprint {
				t.Errorf("fingerprints differ: %s (%s) vs %s (%s)", a.Fingerprint, a.Summary, b.Fingerprint, b.Summary)
			}
		})
	}
}

func TestFingerprintDistinct(t *testing.T) {
	logs := []string{
		"--- FAIL: TestSave (0.03s)\nFAIL\n",
		"--- FAIL: TestLoad (0.03s)\nFAIL\n",
		"src/a.c:3:7: error: 'x' undeclared\n",
		"src/a.c:3:7: error: 'y' undeclared\n",
		"npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padd\n",
		"Error: No space left on device\n",
		"Killed\n",
	}
	seen := map[string]int{}
	for i, l := range logs {
		fp := analyzeString(t, l).Fingerprint
		if j, ok := seen[fp]; ok {
			t.Errorf("logs %d and %d share fingerprint %s", j, i, fp)
		}
		seen[fp] = i
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Took 12.5s at 2024-01-02T10:11:12Z", "took #.#s at #-#-#t#:#:#z"},
		{"commit 1a2b3c4d5e6f in /tmp/x-123/y", "commit # in <tmp>"},
		{"TestFoo2  failed", "testfoo2 failed"},
		{"/var/folders/ab/T/tmp.x: open", "<tmp>: open"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, string(normalize(nil, tt.in))); diff != "" {
			t.Errorf("normalize(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}
