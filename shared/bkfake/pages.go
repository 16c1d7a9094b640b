package bkfake

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
)

// assets are the web pages' style sheet and the demo's raw logs.
//
//go:embed demo/*.css demo/*.log
var assets embed.FS

// pageCSP lets the pages load their own style sheet and nothing else: an
// annotation can hold no script, and no markup of its own runs.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// emojiCode is a Buildkite emoji shortcode (:go:), which Buildkite shows as
// a picture and these pages leave out.
var emojiCode = regexp.MustCompile(`:[a-z0-9_+-]+:`)

var pageFuncs = template.FuncMap{
	"markdown": func(s string) template.HTML { return template.HTML(RenderMarkdown(s)) }, //nolint:gosec // RenderMarkdown escapes all but its own markup
	"title": func(j buildkite.Job) string {
		t := strings.Join(strings.Fields(emojiCode.ReplaceAllString(or(j.Name, j.Label), "")), " ")
		return or(or(t, j.StepKey), "job "+j.ID)
	},
	"short": func(s string) string {
		if len(s) > 10 {
			return s[:10]
		}
		return s
	},
	"when": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
}

var pageTemplates = template.Must(template.New("").Funcs(pageFuncs).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>{{.}}</title>
<link rel="stylesheet" href="/assets/page.css">
</head><body>{{end}}
{{define "banner"}}<div class="sim" role="note">A simulated Buildkite organization, served by <code>kitefix serve --demo</code> on this machine. Nothing here reaches Buildkite.</div>{{end}}

{{define "org"}}{{template "head" (printf "%s · builds (simulated Buildkite)" .Name)}}
{{template "banner"}}
<header class="top"><a class="org" href="/">{{.Name}}</a></header>
<main>
<h1>Builds</h1>
{{if not .Builds}}<p class="muted">No builds yet. They arrive over the next seconds.</p>{{end}}
<ol class="builds">
{{range .Builds}}<li class="build-row" data-state="{{.State}}">
  <span class="state" data-state="{{.State}}">{{.State}}</span>
  <a href="{{.WebURL}}">{{.Pipeline.Name}} #{{.Number}}</a>
  <span class="msg">{{.Message}}</span>
  <span class="muted">{{.Branch}}{{if .Annotations}} · annotated{{end}}</span>
</li>{{end}}
</ol>
</main></body></html>{{end}}

{{define "build"}}{{template "head" (printf "%s #%d · %s (simulated Buildkite)" .Build.Pipeline.Name .Build.Number .Build.Message)}}
{{template "banner"}}
<header class="top"><a class="org" href="/">{{.Org}}</a> / <span>{{.Build.Pipeline.Name}}</span></header>
<main>
<div class="build-head" data-state="{{.Build.State}}">
  <h1><span class="msg">{{.Build.Message}}</span> <span class="num">#{{.Build.Number}}</span></h1>
  <p><span class="state" data-state="{{.Build.State}}" id="build-state">{{.Build.State}}</span>
    branch <code>{{.Build.Branch}}</code> · commit <code>{{short .Build.Commit}}</code>{{with .Build.FinishedAt}} · finished <time datetime="{{iso .}}">{{when .}}</time>{{end}}</p>
</div>
<section class="annotations" aria-label="Annotations">
{{range .Annotations}}<div class="annotation" data-style="{{.Style}}" data-context="{{.Context}}" id="annotation-{{.Context}}">{{markdown .Body}}</div>
{{else}}<p class="muted" id="no-annotations">No annotations on this build.</p>{{end}}
</section>
<section class="jobs" aria-label="Jobs">
<h2>Jobs</h2>
{{range .Jobs}}<div class="job" id="{{.Job.ID}}" data-state="{{.Job.State}}">
  <div class="job-head"><span class="state" data-state="{{.Job.State}}">{{.Job.State}}</span>
    <strong>{{title .Job}}</strong>
    {{with .Job.ExitStatus}}<span class="muted">exit {{.}}</span>{{end}}
    {{if .Job.RetriedInJobID}}<span class="muted">· retried in <a href="#{{.Job.RetriedInJobID}}">the job below</a></span>{{end}}
    {{with .Job.RetrySource}}<span class="muted">· retry of <a href="#{{.JobID}}">the job above</a></span>{{end}}
  </div>
  {{if .Log}}<details{{if .Open}} open{{end}}><summary>Log ({{.Lines}} lines)</summary><pre class="log">{{.Log}}</pre></details>{{end}}
</div>
{{end}}
</section>
</main></body></html>{{end}}

{{define "missing"}}{{template "head" "Not found (simulated Buildkite)"}}
{{template "banner"}}
<main><h1>Not found</h1><p>This simulated organization has no such page. <a href="/">See its builds</a>.</p></main></body></html>{{end}}
`))

// pageJob is a job as the build page shows it.
type pageJob struct {
	Job   buildkite.Job
	Log   string
	Lines int
	// Open shows the log of a job that failed and was not retried.
	Open bool
}

// pages serves the web pages: the organization's builds at /, a build at
// /<org>/<pipeline>/builds/<number>, and the style sheet.
func (o *Org) pages() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		switch {
		case r.URL.Path == "/assets/page.css":
			css, _ := assets.ReadFile("demo/page.css")
			h.Set("Content-Type", "text/css; charset=utf-8")
			_, _ = w.Write(css)
		case r.URL.Path == "/":
			o.render(w, "org", o.orgPage())
		case len(parts) == 4 && parts[0] == o.cfg.Slug && parts[2] == "builds":
			n, err := strconv.Atoi(parts[3])
			data, ok := o.buildPage(parts[1], n)
			if err != nil || !ok {
				w.WriteHeader(http.StatusNotFound)
				o.render(w, "missing", nil)
				return
			}
			o.render(w, "build", data)
		default:
			w.WriteHeader(http.StatusNotFound)
			o.render(w, "missing", nil)
		}
	})
}

func (o *Org) render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&b, name, data); err != nil {
		o.log.Error("render simulated Buildkite page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

func (o *Org) orgPage() any {
	o.mu.Lock()
	defer o.mu.Unlock()
	builds := make([]orgBuild, 0, len(o.builds))
	for _, b := range slices.Backward(o.builds) {
		builds = append(builds, *b)
	}
	return struct {
		Name   string
		Builds []orgBuild
	}{o.cfg.Name, builds}
}

func (o *Org) buildPage(pipeline string, number int) (any, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.find(pipeline, number)
	if b == nil {
		return nil, false
	}
	jobs := make([]pageJob, len(b.Jobs))
	for i, j := range b.Jobs {
		text := o.logs[j.ID]
		jobs[i] = pageJob{Job: j, Log: text, Lines: strings.Count(text, "\n"),
			Open: (j.State == "failed" || j.State == "timed_out") && !j.Retried}
	}
	return struct {
		Org         string
		Build       buildkite.Build
		Annotations []buildkite.Annotation
		Jobs        []pageJob
	}{o.cfg.Name, b.Build, slices.Clone(b.Annotations), jobs}, true
}
