package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

// runAnalyze implements `kitefix analyze [--json] [--baseline PASSING_LOG]
// [FILE|-]`: it analyzes one raw job log, read from FILE or from stdin, and
// prints the result. With --baseline, lines that also occur in the passing
// log of the same job count as ordinary output. It returns 0 when the
// analysis was printed, 1 when an input could not be read and 2 for bad
// usage.
func runAnalyze(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the analysis as one JSON object")
	baseline := fs.String("baseline", "", "a passing log of the same job: lines that also occur there are ordinary output")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kitefix analyze [--json] [--baseline PASSING_LOG] [FILE|-]")
		fmt.Fprintln(stderr, "Analyze one raw CI job log (stdin when FILE is - or missing) and explain the failure.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "kitefix analyze: at most one FILE")
		fs.Usage()
		return 2
	}
	var opts loganalysis.Options
	if *baseline != "" {
		b, err := readBaseline(ctx, *baseline)
		if err != nil {
			fmt.Fprintf(stderr, "kitefix analyze: %v\n", err)
			return 1
		}
		opts.Baseline = b
	}
	in := stdin
	name := "-"
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		name = fs.Arg(0)
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "kitefix analyze: open log: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	res, err := loganalysis.Analyze(ctx, in, opts)
	if err != nil {
		fmt.Fprintf(stderr, "kitefix analyze: %s: %v\n", name, err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "kitefix analyze: write result: %v\n", err)
			return 1
		}
		return 0
	}
	writeReport(stdout, res)
	return 0
}

// readBaseline reads the passing log at path into a baseline.
func readBaseline(ctx context.Context, path string) (*loganalysis.Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open baseline log: %w", err)
	}
	defer f.Close()
	b, err := loganalysis.NewBaseline(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// writeReport prints a short human-readable report of an analysis.
func writeReport(w io.Writer, res loganalysis.Result) {
	fmt.Fprintf(w, "%s: %s\n", res.Category, res.Summary)
	if res.Section != "" {
		fmt.Fprintf(w, "section: %s\n", res.Section)
	}
	if res.Command != "" {
		fmt.Fprintf(w, "command: %s\n", res.Command)
	}
	if res.ExitStatus != nil {
		fmt.Fprintf(w, "exit status: %d\n", *res.ExitStatus)
	}
	for _, t := range res.FailingTests {
		loc := ""
		if t.File != "" {
			loc = " (" + place(t.File, t.Line, 0) + ")"
		}
		fmt.Fprintf(w, "failing test: %s%s\n", t.Name, loc)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(w, "error: %s: %s\n", place(e.File, e.Line, e.Column), e.Message)
	}
	for _, x := range res.Excerpts {
		fmt.Fprintf(w, "\nlines %d-%d:\n", x.StartLine, x.EndLine)
		for _, l := range strings.Split(x.Text, "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	fmt.Fprintf(w, "\nfingerprint %s, %d lines, %d bytes\n", res.Fingerprint, res.Lines, res.Bytes)
}

// place formats file:line:column, leaving out the numbers that are unknown.
func place(file string, line, column int) string {
	switch {
	case line == 0:
		return file
	case column == 0:
		return fmt.Sprintf("%s:%d", file, line)
	}
	return fmt.Sprintf("%s:%d:%d", file, line, column)
}
