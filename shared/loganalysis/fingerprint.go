package loganalysis

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// fingerprintLines picks what identifies a failure: the failing tests, else
// the error messages with their files, else the signalling lines of the
// excerpt.
func fingerprintLines(res *Result, best *cluster) []string {
	var out []string
	switch {
	case len(res.FailingTests) > 0:
		for _, t := range res.FailingTests {
			out = append(out, "test "+t.Name)
		}
		sort.Strings(out)
	case len(res.Errors) > 0:
		for _, e := range res.Errors[:min(5, len(res.Errors))] {
			out = append(out, "error "+baseName(e.File)+" "+e.Message)
		}
	case best != nil:
		for i, l := range best.lines {
			if best.scores[i] >= 2 || best.tail {
				out = append(out, l)
			}
			if len(out) == 5 {
				break
			}
		}
	}
	return out
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// fingerprint hashes a category and normalised lines into 16 hex digits.
func fingerprint(cat Category, lines []string) string {
	h := sha256.New()
	h.Write([]byte(cat))
	var buf []byte
	for _, l := range lines {
		buf = normalize(buf[:0], l)
		h.Write([]byte{'\n'})
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// normalize appends to dst a form of s that stays the same across builds:
// lower case, numbers, hex ids and timestamps as '#', temporary paths as
// "<tmp>", runs of spaces as one.
func normalize(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '/' && (strings.HasPrefix(s[i:], "/tmp/") || strings.HasPrefix(s[i:], "/var/folders/") ||
			strings.HasPrefix(s[i:], "/private/var/folders/")):
			dst = append(dst, "<tmp>"...)
			for i < len(s) && s[i] != ' ' && s[i] != '\'' && s[i] != '"' && s[i] != ':' {
				i++
			}
		case isHexish(s, i):
			dst = append(dst, '#')
			for i < len(s) && isHex(s[i]) {
				i++
			}
		case c == ' ' || c == '\t':
			if len(dst) > 0 && dst[len(dst)-1] != ' ' {
				dst = append(dst, ' ')
			}
			i++
		default:
			if c >= 'A' && c <= 'Z' {
				c += 32
			}
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

func isHex(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f' }

// isHexish reports whether a number or hex id starts at s[i]: a digit, or a
// run of at least 7 hex digits holding a digit, not inside a word.
func isHexish(s string, i int) bool {
	if i > 0 && isLetter(s[i-1]) && !(s[i-1] == 'T' && i > 1 && isDigit(s[i-2])) {
		return false // part of a name, unless the T of an ISO 8601 time
	}
	if isDigit(s[i]) {
		return true
	}
	j, digit := i, false
	for j < len(s) && isHex(s[j]) {
		digit = digit || isDigit(s[j])
		j++
	}
	return digit && j-i >= 7 && (j == len(s) || !isLetter(s[j]))
}
