package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

func TestWriteLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.log")
	n, err := writeLog(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != n || n < 1<<20-8<<10 {
		t.Errorf("wrote %d bytes, reported %d, want about 1 MiB", fi.Size(), n)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := loganalysis.Analyze(context.Background(), f, loganalysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Category != loganalysis.CategoryTest || len(res.Excerpts) == 0 ||
		!strings.Contains(res.Excerpts[0].Text, "--- FAIL: TestWidgetSave") {
		t.Errorf("analysis of the generated log: %s %+v", res.Category, res.Excerpts)
	}
}
