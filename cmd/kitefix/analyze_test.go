package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

const failingLog = "--- :go: Test\n$ go test ./...\n--- FAIL: TestSave (0.01s)\n    save_test.go:9: got 500\nFAIL\n" +
	"🚨 Error: The command exited with status 1\n"

// noisyFailingLog fails a test, then prints errors that its passing run
// (noisyPassingLog) printed too.
const (
	noisyFailingLog = "+++ Test\n--- FAIL: TestSave (0.02s)\n    widget_test.go:12: got 500, want 201\n" +
		"FAIL\tgithub.com/acme/widget\t0.412s\ncleaning up\n" +
		"Error: could not reach the telemetry endpoint at 10.0.0.3:443\n" +
		"Error: telemetry upload failed after 3 attempts\ndone\n"
	noisyPassingLog = "+++ Test\nok  \tgithub.com/acme/widget\t0.301s\ncleaning up\n" +
		"Error: could not reach the telemetry endpoint at 10.0.0.7:443\n" +
		"Error: telemetry upload failed after 3 attempts\ndone\n"
)

func TestRunAnalyzeExitCodes(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "job.log")
	if err := os.WriteFile(logPath, []byte(failingLog), 0o600); err != nil {
		t.Fatal(err)
	}
	failPath, passPath := filepath.Join(dir, "fail.log"), filepath.Join(dir, "pass.log")
	if err := os.WriteFile(failPath, []byte(noisyFailingLog), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passPath, []byte(noisyPassingLog), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  string // stdout must contain it
		wantErr  string // stderr must contain it
	}{
		{"file", []string{logPath}, "", 0, "failing test: TestSave", ""},
		{"stdin with dash", []string{"-"}, failingLog, 0, "test: 1 failing test(s): TestSave", ""},
		{"stdin without file", nil, failingLog, 0, "exit status: 1", ""},
		{"json", []string{"--json", logPath}, "", 0, `"category": "test"`, ""},
		{"empty stdin", nil, "", 0, "unknown", ""},
		{"missing file", []string{filepath.Join(dir, "nope.log")}, "", 1, "", "open log"},
		{"directory", []string{dir}, "", 1, "", "read log"},
		{"unknown flag", []string{"--yaml"}, "", 2, "", "usage: kitefix analyze"},
		{"two files", []string{logPath, logPath}, "", 2, "", "at most one FILE"},
		{"help", []string{"-h"}, "", 0, "", "usage: kitefix analyze"},
		{"without baseline", []string{failPath}, "", 0, "lines 2-7:", ""},
		{"baseline", []string{"--baseline", passPath, failPath}, "", 0, "lines 2-4:", ""},
		{"baseline and stdin", []string{"--baseline", passPath}, noisyFailingLog, 0, "lines 2-4:", ""},
		{"missing baseline", []string{"--baseline", filepath.Join(dir, "nope.log"), failPath}, "", 1, "", "open baseline log"},
		{"baseline is a directory", []string{"--baseline", dir, failPath}, "", 1, "", "read baseline log"},
		{"baseline without value", []string{"--baseline"}, "", 2, "", "usage: kitefix analyze"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runAnalyze(context.Background(), tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout does not contain %q:\n%s", tt.wantOut, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantErr, stderr.String())
			}
		})
	}
}

func TestRunAnalyzeJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runAnalyze(context.Background(), []string{"--json"}, strings.NewReader(failingLog), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code = %d, stderr %q", code, stderr.String())
	}
	var got loganalysis.Result
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	exit := 1
	want := loganalysis.Result{
		Category:     loganalysis.CategoryTest,
		Summary:      got.Summary,
		Excerpts:     []loganalysis.Excerpt{{StartLine: 3, EndLine: 4, Text: "--- FAIL: TestSave (0.01s)\n    save_test.go:9: got 500"}},
		FailingTests: []loganalysis.FailingTest{{Name: "TestSave", File: "save_test.go", Line: 9}},
		Errors:       []loganalysis.ErrorLocation{},
		Section:      ":go: Test",
		Command:      "go test ./...",
		ExitStatus:   &exit,
		Fingerprint:  got.Fingerprint,
		Lines:        6,
		Bytes:        int64(len(failingLog)),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestRunAnalyzeBinaryJSON(t *testing.T) {
	in := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{'k', 'i', 't', 'e'}).Read(in)
	var stdout, stderr bytes.Buffer
	if code := runAnalyze(context.Background(), []string{"--json"}, bytes.NewReader(in), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code = %d, stderr %q", code, stderr.String())
	}
	var got struct {
		Category string            `json:"category"`
		Summary  string            `json:"summary"`
		Excerpts []json.RawMessage `json:"excerpts"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := got
	want.Category, want.Summary, want.Excerpts = "unknown", "no failure found in the log", []json.RawMessage{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestPlace(t *testing.T) {
	tests := []struct {
		file         string
		line, column int
		want         string
	}{
		{"a.go", 3, 7, "a.go:3:7"},
		{"a.go", 3, 0, "a.go:3"},
		{"a.go", 0, 0, "a.go"},
	}
	for _, tt := range tests {
		if got := place(tt.file, tt.line, tt.column); got != tt.want {
			t.Errorf("place(%q, %d, %d) = %q, want %q", tt.file, tt.line, tt.column, got, tt.want)
		}
	}
}
