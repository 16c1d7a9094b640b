package analysis

import (
	"slices"
	"strings"

	"github.com/kitefix/kitefix/shared/loganalysis"
)

// redacted replaces a secret found in a job's log.
const redacted = "[redacted]"

// redactResult removes secrets (the tenant's API token) from every text of
// an analysis: a job that prints the token in its log must not carry it
// into the stored analysis, the annotation, the listing or a log line.
func redactResult(res loganalysis.Result, secrets ...string) loganalysis.Result {
	pairs := replacements(secrets)
	if len(pairs) == 0 {
		return res
	}
	r := strings.NewReplacer(pairs...)
	res.Summary = r.Replace(res.Summary)
	res.Section = r.Replace(res.Section)
	res.Command = r.Replace(res.Command)
	res.Excerpts = slices.Clone(res.Excerpts)
	for i := range res.Excerpts {
		res.Excerpts[i].Text = r.Replace(res.Excerpts[i].Text)
	}
	res.FailingTests = slices.Clone(res.FailingTests)
	for i := range res.FailingTests {
		res.FailingTests[i].Name = r.Replace(res.FailingTests[i].Name)
		res.FailingTests[i].File = r.Replace(res.FailingTests[i].File)
	}
	res.Errors = slices.Clone(res.Errors)
	for i := range res.Errors {
		res.Errors[i].File = r.Replace(res.Errors[i].File)
		res.Errors[i].Message = r.Replace(res.Errors[i].Message)
	}
	return res
}

// replacements pairs each non-empty secret with the redaction mark.
func replacements(secrets []string) []string {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, redacted)
		}
	}
	return pairs
}
