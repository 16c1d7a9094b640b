package bkfake

import (
	"regexp"
	"strings"
)

// RenderMarkdown turns annotation Markdown into HTML the way Buildkite shows
// it, for the subset kitefix writes: ATX headings, paragraphs, fenced code
// blocks, thematic breaks (---), code spans, **strong**, links, backslash
// escapes, character references and the <sub> tag. Everything else is
// text: any other HTML is escaped, and a link whose address is not http,
// https, a path or a fragment keeps its text and loses its address. The
// result is safe to put inside an HTML element.
func RenderMarkdown(src string) string {
	src = strings.ReplaceAll(strings.ReplaceAll(src, "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(src, "\n")
	var b strings.Builder
	var para []string
	flush := func() {
		if len(para) > 0 {
			b.WriteString("<p>")
			b.WriteString(renderInline(strings.Join(para, "\n")))
			b.WriteString("</p>\n")
			para = nil
		}
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case fenceOpen.MatchString(line):
			flush()
			m := fenceOpen.FindStringSubmatch(line)
			fence, info := m[1], strings.TrimSpace(m[2])
			var code []string
			for i++; i < len(lines); i++ {
				if closesFence(lines[i], fence) {
					break
				}
				code = append(code, lines[i])
			}
			b.WriteString("<pre><code")
			if lang, _, _ := strings.Cut(info, " "); fenceLang.MatchString(lang) {
				b.WriteString(` class="language-` + lang + `"`)
			}
			b.WriteString(">")
			for _, l := range code {
				b.WriteString(escapeHTML(l))
				b.WriteString("\n")
			}
			b.WriteString("</code></pre>\n")
		case heading.MatchString(line):
			flush()
			m := heading.FindStringSubmatch(line)
			level := string(rune('0' + len(m[1])))
			text := strings.TrimSpace(closingHashes.ReplaceAllString(m[2], ""))
			b.WriteString("<h" + level + ">" + renderInline(text) + "</h" + level + ">\n")
		case thematicBreak.MatchString(line):
			flush()
			b.WriteString("<hr>\n")
		default:
			para = append(para, strings.TrimLeft(line, " \t"))
		}
	}
	flush()
	return b.String()
}

var (
	// fenceOpen is an opening code fence: three or more backticks (whose
	// info string has none) or tildes, indented at most three spaces.
	fenceOpen = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})([^`]*)$")
	// fenceLang is an info string's language that may name a class.
	fenceLang     = regexp.MustCompile(`^[A-Za-z0-9_+.#-]{1,32}$`)
	heading       = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*))?$`)
	closingHashes = regexp.MustCompile(`(?:^|[ \t]+)#+[ \t]*$`)
	thematicBreak = regexp.MustCompile(`^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$`)
	// entity is a character reference left as it is: a few named ones and
	// numeric ones.
	entity = regexp.MustCompile(`^&(?:lt|gt|amp|quot|apos|nbsp|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});`)
	// safeURL is an address a link may keep.
	safeURL = regexp.MustCompile(`^(?:(?i:https?)://[^\s<>]+|/[^\s<>]*|#[^\s<>]*)$`)
)

// closesFence reports whether line closes the block opened by fence: the
// same character, at least as many, nothing after but spaces.
func closesFence(line, fence string) bool {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	n := 0
	for n < len(t) && t[n] == fence[0] {
		n++
	}
	return n >= len(fence) && strings.TrimSpace(t[n:]) == ""
}

// asciiPunct are the characters a backslash escapes.
const asciiPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// renderInline renders the inline Markdown of s as HTML.
func renderInline(s string) string {
	var b strings.Builder
	subs := 0 // <sub> tags open
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && strings.IndexByte(asciiPunct, s[i+1]) >= 0:
			b.WriteString(escapeHTML(s[i+1 : i+2]))
			i += 2
		case c == '`':
			n := run(s, i, '`')
			end := findRun(s, i+n, '`', n)
			if end < 0 {
				b.WriteString(s[i : i+n])
				i += n
				continue
			}
			code := strings.ReplaceAll(s[i+n:end], "\n", " ")
			if len(code) >= 2 && code[0] == ' ' && code[len(code)-1] == ' ' && strings.TrimSpace(code) != "" {
				code = code[1 : len(code)-1]
			}
			b.WriteString("<code>" + escapeHTML(code) + "</code>")
			i = end + n
		case strings.HasPrefix(s[i:], "**"):
			end := findDelim(s, i+2, "**")
			if end <= i+2 {
				b.WriteString("**")
				i += 2
				continue
			}
			b.WriteString("<strong>" + renderInline(s[i+2:end]) + "</strong>")
			i = end + 2
		case c == '[':
			text, href, next, ok := link(s, i)
			if !ok {
				b.WriteString("[")
				i++
				continue
			}
			if safeURL.MatchString(href) {
				b.WriteString(`<a href="` + escapeHTML(href) + `" rel="noopener noreferrer">` + renderInline(text) + "</a>")
			} else {
				b.WriteString(renderInline(text))
			}
			i = next
		case c == '<':
			switch rest := strings.ToLower(s[i:]); {
			case strings.HasPrefix(rest, "<sub>"):
				b.WriteString("<sub>")
				subs++
				i += len("<sub>")
			case strings.HasPrefix(rest, "</sub>") && subs > 0:
				b.WriteString("</sub>")
				subs--
				i += len("</sub>")
			default:
				b.WriteString("&lt;")
				i++
			}
		case c == '&':
			if m := entity.FindString(s[i:]); m != "" {
				b.WriteString(m)
				i += len(m)
				continue
			}
			b.WriteString("&amp;")
			i++
		default:
			b.WriteString(escapeHTML(s[i : i+1]))
			i++
		}
	}
	b.WriteString(strings.Repeat("</sub>", subs))
	return b.String()
}

// run counts the bytes c from s[i].
func run(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// findRun finds, from i, a run of exactly n bytes c; -1 when there is none.
func findRun(s string, i int, c byte, n int) int {
	for i < len(s) {
		if s[i] != c {
			i++
			continue
		}
		m := run(s, i, c)
		if m == n {
			return i
		}
		i += m
	}
	return -1
}

// findDelim finds delim in s from i, outside backslash escapes and code
// spans; -1 when there is none.
func findDelim(s string, i int, delim string) int {
	for i < len(s) {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i += 2
		case s[i] == '`':
			n := run(s, i, '`')
			if end := findRun(s, i+n, '`', n); end >= 0 {
				i = end + n
			} else {
				i += n
			}
		case strings.HasPrefix(s[i:], delim):
			return i
		default:
			i++
		}
	}
	return -1
}

// link reads [text](address) at s[i]: its text, its address (backslash
// escapes resolved) and where it ends.
func link(s string, i int) (text, href string, next int, ok bool) {
	end := findDelim(s, i+1, "]")
	if end < 0 || end+1 >= len(s) || s[end+1] != '(' {
		return "", "", 0, false
	}
	n := strings.IndexByte(s[end+2:], ')')
	if n < 0 {
		return "", "", 0, false
	}
	href = s[end+2 : end+2+n]
	if strings.ContainsAny(href, " \t\n") {
		return "", "", 0, false
	}
	return s[i+1 : end], unescapeBackslashes(href), end + 2 + n + 1, true
}

// unescapeBackslashes resolves backslash escapes of punctuation.
func unescapeBackslashes(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(asciiPunct, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")

// escapeHTML escapes text for an element's content or a quoted attribute.
func escapeHTML(s string) string { return htmlEscaper.Replace(s) }
