package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Summary holds the fields of a payload that Decide and the queue message
// need. Summarize fills it in one pass over the body.
type Summary struct {
	Event    string
	Job      JobSummary
	Build    BuildSummary
	Pipeline PipelineSummary
}

// JobSummary is the part of the payload's job that decides whether it is
// queued.
type JobSummary struct {
	ID         string
	Type       string
	State      string
	SoftFailed bool
	// ExitStatus is nil when the job has none (it never ran, or it is not
	// a command job).
	ExitStatus *int
}

// BuildSummary identifies the payload's build.
type BuildSummary struct {
	ID     string
	Number int
	State  string
	URL    string
	WebURL string
}

// PipelineSummary identifies the payload's pipeline.
type PipelineSummary struct {
	Slug string
	URL  string
}

// Org returns the organization slug, read from the pipeline's or the
// build's API URL (".../organizations/<org>/pipelines/...") or else from
// the build's web URL ("https://buildkite.com/<org>/<pipeline>/builds/N"):
// webhook payloads carry no organization object.
func (s Summary) Org() string {
	for _, u := range []string{s.Pipeline.URL, s.Build.URL} {
		if org := orgFromAPIURL(u); org != "" {
			return org
		}
	}
	return orgFromWebURL(s.Build.WebURL)
}

func orgFromAPIURL(u string) string {
	_, rest, ok := strings.Cut(u, "/organizations/")
	if !ok {
		return ""
	}
	org, _, _ := strings.Cut(rest, "/")
	return org
}

func orgFromWebURL(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	_, path, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	org, _, _ := strings.Cut(path, "/")
	return org
}

// maxDepth is the deepest nesting Summarize accepts, the same limit
// encoding/json applies, so the two agree on what is valid JSON.
const maxDepth = 10000

// ErrSyntax is wrapped by every error Summarize returns for a body that is
// not the JSON object of a delivery.
var ErrSyntax = errors.New("malformed payload")

// Summarize reads the summary fields of a delivery's body and checks that
// the whole body is one valid JSON object. It reads keys as encoding/json
// does (case-insensitive, a later duplicate wins, null leaves a string as
// it was), so it agrees with Decode on every field it reads.
func Summarize(body []byte) (Summary, error) {
	p := parser{s: string(body)}
	var s Summary
	if err := p.top(&s); err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	return s, nil
}

// parser walks a JSON text held as a string: fields it keeps are
// substrings, so reading them allocates nothing.
type parser struct {
	s     string
	i     int
	depth int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{p.i}, args...)...)
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) top(s *Summary) error {
	p.ws()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return p.errorf("want a JSON object")
	}
	if err := p.walk(func(key string) error {
		switch {
		case strings.EqualFold(key, "event"):
			return p.str(&s.Event)
		case strings.EqualFold(key, "job"):
			return p.job(&s.Job)
		case strings.EqualFold(key, "build"):
			return p.build(&s.Build)
		case strings.EqualFold(key, "pipeline"):
			return p.pipeline(&s.Pipeline)
		}
		return p.skip()
	}); err != nil {
		return err
	}
	p.ws()
	if p.i != len(p.s) {
		return p.errorf("data after the object")
	}
	return nil
}

func (p *parser) job(j *JobSummary) error {
	if p.null() {
		*j = JobSummary{}
		return nil
	}
	return p.walk(func(key string) error {
		switch {
		case strings.EqualFold(key, "id"):
			return p.str(&j.ID)
		case strings.EqualFold(key, "type"):
			return p.str(&j.Type)
		case strings.EqualFold(key, "state"):
			return p.str(&j.State)
		case strings.EqualFold(key, "soft_failed"):
			return p.boolean(&j.SoftFailed)
		case strings.EqualFold(key, "exit_status"):
			if p.null() {
				j.ExitStatus = nil
				return nil
			}
			n, err := p.integer()
			if err != nil {
				return err
			}
			j.ExitStatus = &n
			return nil
		}
		return p.skip()
	})
}

func (p *parser) build(b *BuildSummary) error {
	if p.null() {
		*b = BuildSummary{}
		return nil
	}
	return p.walk(func(key string) error {
		switch {
		case strings.EqualFold(key, "id"):
			return p.str(&b.ID)
		case strings.EqualFold(key, "number"):
			if p.null() {
				return nil
			}
			n, err := p.integer()
			if err != nil {
				return err
			}
			b.Number = n
			return nil
		case strings.EqualFold(key, "state"):
			return p.str(&b.State)
		case strings.EqualFold(key, "url"):
			return p.str(&b.URL)
		case strings.EqualFold(key, "web_url"):
			return p.str(&b.WebURL)
		}
		return p.skip()
	})
}

func (p *parser) pipeline(pl *PipelineSummary) error {
	if p.null() {
		*pl = PipelineSummary{}
		return nil
	}
	return p.walk(func(key string) error {
		switch {
		case strings.EqualFold(key, "slug"):
			return p.str(&pl.Slug)
		case strings.EqualFold(key, "url"):
			return p.str(&pl.URL)
		}
		return p.skip()
	})
}

// walk reads the object at p.i, calling member for each key with p.i at
// the key's value; member must consume the value.
func (p *parser) walk(member func(key string) error) error {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return p.errorf("want an object")
	}
	if empty, err := p.enter('}'); err != nil || empty {
		return err
	}
	for {
		p.ws()
		raw, err := p.rawString()
		if err != nil {
			return err
		}
		key, err := unquote(raw)
		if err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return p.errorf("want ':' after an object key")
		}
		p.i++
		p.ws()
		if err := member(key); err != nil {
			return err
		}
		if done, err := p.next('}', "object"); err != nil || done {
			return err
		}
	}
}

// enter steps into the object or array whose opening bracket is at p.i.
// empty reports that its closing bracket, close, follows at once; then
// that is consumed too and the object or array left.
func (p *parser) enter(close byte) (empty bool, err error) {
	if p.depth++; p.depth > maxDepth {
		return false, p.errorf("nested too deeply")
	}
	p.i++
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == close {
		p.i++
		p.depth--
		return true, nil
	}
	return false, nil
}

// next consumes what follows a member of an object or array (kind): a
// comma, or its closing bracket, close, which leaves it (done).
func (p *parser) next(close byte, kind string) (done bool, err error) {
	p.ws()
	if p.i >= len(p.s) {
		return false, p.errorf("unterminated %s", kind)
	}
	switch p.s[p.i] {
	case ',':
		p.i++
		return false, nil
	case close:
		p.i++
		p.depth--
		return true, nil
	}
	return false, p.errorf("want ',' or '%c' in an %s", close, kind)
}

// null consumes a null literal if one is at p.i.
func (p *parser) null() bool {
	if strings.HasPrefix(p.s[p.i:], "null") {
		p.i += len("null")
		return true
	}
	return false
}

// str reads a string into dst; null leaves dst as it was.
func (p *parser) str(dst *string) error {
	if p.null() {
		return nil
	}
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return p.errorf("want a string")
	}
	raw, err := p.rawString()
	if err != nil {
		return err
	}
	v, err := unquote(raw)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// boolean reads true or false into dst; null leaves dst as it was.
func (p *parser) boolean(dst *bool) error {
	switch {
	case p.null():
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += len("true")
		*dst = true
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += len("false")
		*dst = false
	default:
		return p.errorf("want true or false")
	}
	return nil
}

// integer reads a JSON number that is an integer within int.
func (p *parser) integer() (int, error) {
	start := p.i
	if err := p.number(); err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(p.s[start:p.i])
	if err != nil {
		return 0, p.errorf("want an integer")
	}
	return n, nil
}

// rawString consumes the string at p.i and returns it with its quotes.
func (p *parser) rawString() (string, error) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", p.errorf("want a string")
	}
	start, i := p.i, p.i+1
	for {
		// Jump to the next quote, then check the stretch before it for
		// escapes and control characters.
		q := strings.IndexByte(p.s[i:], '"')
		if q < 0 {
			p.i = len(p.s)
			return "", p.errorf("unterminated string")
		}
		end, escaped := i+q, false
		for k := i; k < end; k++ {
			// Skip eight plain bytes at a time.
			for k+8 <= end {
				w := p.s[k : k+8]
				x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
					uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
				if special8(x) {
					break
				}
				k += 8
			}
			if k >= end {
				break
			}
			c := p.s[k]
			if c < 0x20 {
				p.i = k
				return "", p.errorf("control character in a string")
			}
			if c != '\\' {
				continue
			}
			n, err := escapeLen(p.s[k:])
			if err != nil {
				p.i = k
				return "", p.errorf("%v", err)
			}
			if k+n > end {
				// The quote found is the escaped one: look further.
				i, escaped = k+n, true
				break
			}
			k += n - 1
		}
		if !escaped {
			p.i = end + 1
			return p.s[start:p.i], nil
		}
	}
}

// SWAR constants: one in each byte, and each byte's top bit.
const (
	ones = 0x0101010101010101
	tops = 0x8080808080808080
)

// special8 reports whether any of the eight bytes of x is a control
// character or a backslash: the bytes a string scan must stop at (quotes
// are found before).
func special8(x uint64) bool {
	b := x ^ (ones * '\\')
	// (v - ones*n) &^ v & tops is non-zero when some byte of v is below n.
	return ((x-ones*0x20)&^x|(b-ones)&^b)&tops != 0
}

// escapeLen returns the length of the escape sequence at the start of
// rest, which begins with a backslash.
func escapeLen(rest string) (int, error) {
	if len(rest) < 2 {
		return 0, errors.New("unterminated escape")
	}
	switch rest[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		if len(rest) < 6 {
			return 0, errors.New("short \\u escape")
		}
		for k := 2; k < 6; k++ {
			if _, ok := fromHex(rest[k]); !ok {
				return 0, errors.New("bad \\u escape")
			}
		}
		return 6, nil
	}
	return 0, errors.New("unknown escape")
}

// unquote returns the value of a raw JSON string. Plain ASCII without
// escapes is the text between the quotes; anything else goes through
// encoding/json so escapes and invalid UTF-8 come out exactly as Decode
// gives them.
func unquote(raw string) (string, error) {
	inner := raw[1 : len(raw)-1]
	for k := 0; k < len(inner); k++ {
		if c := inner[k]; c == '\\' || c >= 0x80 {
			var v string
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				return "", fmt.Errorf("decode string: %w", err)
			}
			return v, nil
		}
	}
	return inner, nil
}

// skip consumes one JSON value of any kind, checking its syntax.
func (p *parser) skip() error {
	if p.i >= len(p.s) {
		return p.errorf("want a value")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.walk(func(string) error { return p.skip() })
	case c == '[':
		return p.array()
	case c == '"':
		_, err := p.rawString()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	}
	return p.errorf("want a value")
}

func (p *parser) literal(word string) error {
	if !strings.HasPrefix(p.s[p.i:], word) {
		return p.errorf("want %s", word)
	}
	p.i += len(word)
	return nil
}

func (p *parser) array() error {
	if empty, err := p.enter(']'); err != nil || empty {
		return err
	}
	for {
		p.ws()
		if err := p.skip(); err != nil {
			return err
		}
		if done, err := p.next(']', "array"); err != nil || done {
			return err
		}
	}
}

// number consumes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() error {
	s, i := p.s, p.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return p.errorf("want a number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return p.errorf("want digits after '.'")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return p.errorf("want digits in an exponent")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	p.i = i
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
