package bkfake_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/bkfake"
)

func TestRenderMarkdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"heading", "#### kitefix: 1 failure", "<h4>kitefix: 1 failure</h4>\n"},
		{"heading closing hashes", "## Title ##", "<h2>Title</h2>\n"},
		{"hash without space is text", "#5 is not a heading", "<p>#5 is not a heading</p>\n"},
		{"paragraphs", "one\ntwo\n\nthree", "<p>one\ntwo</p>\n<p>three</p>\n"},
		{"strong", "**test** · summary", "<p><strong>test</strong> · summary</p>\n"},
		{"unclosed strong is text", "**open", "<p>**open</p>\n"},
		{"code span", "run `go test ./...` now", "<p>run <code>go test ./...</code> now</p>\n"},
		{"code span with backticks", "``a`b``", "<p><code>a`b</code></p>\n"},
		{"code span strips one space each side", "`` `x` ``", "<p><code>`x`</code></p>\n"},
		{"unclosed code span is text", "`open", "<p>`open</p>\n"},
		{"backslash escapes", `\*not em\* \_x\_ \[y\] \#`, "<p>*not em* _x_ [y] #</p>\n"},
		{"link", "[job](https://buildkite.com/acme/web/builds/1#abc)",
			`<p><a href="https://buildkite.com/acme/web/builds/1#abc" rel="noopener noreferrer">job</a></p>` + "\n"},
		{"link text is inline", "[**a** `b`](/x)", `<p><a href="/x" rel="noopener noreferrer"><strong>a</strong> <code>b</code></a></p>` + "\n"},
		{"fence", "```text\nline <1>\n  & two\n```", "<pre><code class=\"language-text\">line &lt;1&gt;\n  &amp; two\n</code></pre>\n"},
		{"longer fence holds a shorter one", "````\n```\ninner\n```\n````", "<pre><code>```\ninner\n```\n</code></pre>\n"},
		{"unclosed fence runs to the end", "```\nlast", "<pre><code>last\n</code></pre>\n"},
		{"thematic break", "a\n\n---\n\nb", "<p>a</p>\n<hr>\n<p>b</p>\n"},
		{"sub", "<sub>from line 3</sub>", "<p><sub>from line 3</sub></p>\n"},
		{"unclosed sub is closed", "<sub>open", "<p><sub>open</sub></p>\n"},
		{"stray close sub is text", "</sub>x", "<p>&lt;/sub&gt;x</p>\n"},
		{"entities kept", "&lt;T&gt; &amp; &#39; &#x41;", "<p>&lt;T&gt; &amp; &#39; &#x41;</p>\n"},
		{"bare ampersand escaped", "a & b &nope; &", "<p>a &amp; b &amp;nope; &amp;</p>\n"},
		{"CRLF", "a\r\nb", "<p>a\nb</p>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, bkfake.RenderMarkdown(tt.in)); diff != "" {
				t.Errorf("RenderMarkdown(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestRenderMarkdownEscapes feeds markup that must not survive: every tag
// in the output is one the renderer makes, with no attribute but its own,
// and no address but http, https, a path or a fragment.
func TestRenderMarkdownEscapes(t *testing.T) {
	t.Parallel()
	hostile := []string{
		`<script>alert(1)</script>`,
		`<img src=x onerror=alert(1)>`,
		`<sub onclick="alert(1)">x</sub>`,
		`<SUB>ok</SUB><iframe src="https://evil.example"></iframe>`,
		`[click](javascript:alert(1))`,
		`[click](JaVaScRiPt:alert(1))`,
		`[click](data:text/html;base64,PHNjcmlwdD4=)`,
		`[click](https://ok.example/"onmouseover="alert(1))`,
		`[x](vbscript:msgbox)`,
		"**<b>bold</b>**",
		"`<script>alert(1)</script>`",
		"```\n</code></pre><script>alert(1)</script>\n```",
		"```\"><script>alert(1)</script>\nx\n```",
		"#### <style>body{display:none}</style>",
		`&#60;script&#62;`,
		`<!-- comment --> <![CDATA[x]]> <?php ?>`,
		`[a](https://ok.example)<a href="javascript:alert(1)">b</a>`,
		"\\<script>alert(1)\\</script>",
	}
	for _, in := range hostile {
		out := bkfake.RenderMarkdown(in)
		for i := strings.IndexByte(out, '<'); i >= 0; {
			tag := allowedTag.FindString(out[i:])
			if tag == "" {
				end := min(len(out), i+40)
				t.Errorf("RenderMarkdown(%q) made markup of its own at %q:\n%s", in, out[i:end], out)
				break
			}
			if m := hrefOf.FindStringSubmatch(tag); m != nil && !safeHref.MatchString(m[1]) {
				t.Errorf("RenderMarkdown(%q) links to %q", in, m[1])
			}
			next := strings.IndexByte(out[i+len(tag):], '<')
			if next < 0 {
				break
			}
			i += len(tag) + next
		}
	}
}

var (
	// allowedTag is every tag RenderMarkdown may write.
	allowedTag = regexp.MustCompile(`^(?:</?(?:p|h[1-6]|pre|code|strong|sub|a)>|<hr>|<code class="language-[^"<>&]*">|<a href="[^"<>]*" rel="noopener noreferrer">)`)
	hrefOf     = regexp.MustCompile(`href="([^"]*)"`)
	safeHref   = regexp.MustCompile(`^(?:https?://|/|#)`)
)

// TestRenderMarkdownAnnotation renders the annotation kitefix writes for
// a failure whose log, job name and tests hold markup: the text shows as
// written, and no markup of its own appears.
func TestRenderMarkdownAnnotation(t *testing.T) {
	t.Parallel()
	rep := analysis.BuildReport{Jobs: []analysis.ReportJob{{
		JobID: "j1", Name: `:go: test <img src=x onerror=alert(1)>`, URL: "https://buildkite.com/acme/web/builds/7#j1",
		Category: "test", Summary: "1 failing test(s): Test<script>alert(1)</script> **x** [y](javascript:z)",
		Fingerprint: "f1", Excerpt: "--- FAIL: TestX\n```\n</code></pre><script>alert(2)</script>", StartLine: 12,
		FailingTests: []string{"Test`<b>`x"},
	}}}
	out := bkfake.RenderMarkdown(rep.Markdown())
	for _, bad := range []string{"<script", "<img", "<b>", `href="javascript`} {
		if strings.Contains(strings.ToLower(out), bad) {
			t.Errorf("annotation HTML holds %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{
		"<h4>kitefix: 1 distinct failure in 1 failed job</h4>",
		"<strong>test</strong> · 1 failing test(s): Test&lt;script&gt;alert(1)&lt;/script&gt; **x** [y](javascript:z)",
		"&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;",
		`<a href="https://buildkite.com/acme/web/builds/7#j1" rel="noopener noreferrer">:go: test &lt;img src=x onerror=alert(1)&gt;</a>`,
		"<sub>from line 12 of the log of :go: test &lt;img src=x onerror=alert(1)&gt;</sub>",
		"<code>Test`&lt;b&gt;`x</code>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("annotation HTML lacks %q:\n%s", want, out)
		}
	}
}
