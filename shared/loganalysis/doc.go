// Package loganalysis explains failed CI jobs from their raw logs.
//
// [Analyze] streams a log once, line by line, with memory that does not grow
// with the log: it keeps a short ring of recent lines and a bounded set of
// candidate excerpts, scored as they are read. At the end it picks the excerpt
// that best explains the failure and reports the failure category, the failing
// tests, compiler and linter error locations, the log group, the failing
// command, the exit status and a fingerprint that is stable across builds.
//
// Line numbers are 1-based over the input split on LF only: a CR stays inside
// its line. [Clean] turns one raw line into the text a person would see: it
// drops Buildkite timestamp markers, a leading ISO-8601 timestamp (GitHub
// Actions), ANSI colour and cursor sequences and NUL bytes, and resolves
// carriage-return redraws to the last one drawn.
//
// Each line is classified (its kind and failure signals), scored on one
// scale and placed into a candidate excerpt; scoring.go holds the scale and
// the weights. Ordinary output never counts as the failure: passing
// results, skipped, pending, expected-to-fail and flaky tests, warnings,
// retries, build progress, and the wrapper lines that only report that a
// command or task failed (the first cause beats its echoes).
//
// With [Options].Baseline, made by [NewBaseline] from a passing log of the
// same job, lines that the passing run printed too (after normalising
// timestamps, durations, counters, ids, hashes and temporary paths) are
// ordinary output, and an excerpt runs on over the new lines next to it.
// A Baseline holds at most 1<<18 line hashes (4 MiB), never the log.
//
// Besides Buildkite's groups and exit reports, the analyzer reads GitHub
// Actions' workflow commands ("##[group]Run cmd", "##[error]",
// "::error file=...::") and GitLab CI's collapsible sections
// ("section_start:<ts>:<name>") and job reports ("ERROR: Job failed: ...").
package loganalysis
