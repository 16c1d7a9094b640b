package loganalysis

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Clean appends to dst the text a person would see for one raw log line and
// returns the extended slice. It removes Buildkite timestamp markers
// (ESC _ bk;t=... BEL), other APC, OSC, DCS and CSI escape sequences, lone
// escapes, NUL bytes and other C0 controls except TAB, and resolves carriage
// returns: the line shows the last non-empty text drawn after a CR. A trailing
// CR (a CRLF line end) is dropped. A leading ISO-8601 timestamp, as GitHub
// Actions and other CI systems put before each line
// ("2026-11-20T10:00:09.2000000Z "), is dropped too. The line must not
// contain its LF.
func Clean(dst, line []byte) []byte {
	start := len(dst)
	// Only the last segment after a CR with something visible in it shows.
	seg := line
	if bytes.IndexByte(line, '\r') >= 0 {
		for end := len(line); ; {
			p := bytes.LastIndexByte(line[:end], '\r')
			seg = line[p+1 : end]
			if p < 0 || hasVisible(seg) {
				break
			}
			end = p
		}
	}
	for len(seg) > 0 && isDigit(seg[0]) {
		n := timestampPrefix(seg)
		if n == 0 {
			break
		}
		seg = seg[n:]
	}
	for i := 0; i < len(seg); {
		c := seg[i]
		switch {
		case c == 0x1b:
			i = skipEscape(seg, i)
		case specialByte[c]:
			i++
		default:
			// Copy a run of ordinary bytes at once.
			j := i + 1 + plainRun(seg[i+1:])
			dst = append(dst, seg[i:j]...)
			i = j
		}
	}
	// A timestamp that escapes or controls hid from the check above: what
	// Clean returns never starts with one, so cleaning again changes nothing.
	for len(dst)-start > 0 && isDigit(dst[start]) {
		n := timestampPrefix(dst[start:])
		if n == 0 {
			break
		}
		dst = append(dst[:start], dst[start+n:]...)
	}
	return dst
}

// specialByte marks the bytes Clean removes or interprets: C0 controls other
// than TAB, and DEL.
var specialByte = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = c != '\t'
	}
	t[0x7f] = true
	return t
}()

// hasVisible reports whether b holds anything that Clean would keep.
func hasVisible(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == 0x1b:
			i = skipEscape(b, i)
		case specialByte[c]:
			i++
		default:
			return true
		}
	}
	return false
}

// skipEscape returns the index just past the escape sequence starting at
// line[i] (an ESC byte).
func skipEscape(line []byte, i int) int {
	j := i + 1
	if j >= len(line) {
		return j
	}
	switch line[j] {
	case '[': // CSI: parameters and intermediates, then one final byte.
		j++
		for j < len(line) {
			c := line[j]
			j++
			if c >= 0x40 && c <= 0x7e {
				break
			}
			if c < 0x20 {
				return j - 1
			}
		}
		return j
	case '_', ']', 'P', '^', 'X': // APC, OSC, DCS, PM, SOS: until BEL or ST.
		j++
		rest := line[j:]
		bel := bytes.IndexByte(rest, 0x07)
		limit := len(rest)
		if bel >= 0 {
			limit = bel
		}
		for off := 0; ; {
			k := bytes.IndexByte(rest[off:limit], 0x1b)
			if k < 0 {
				break
			}
			if off+k+1 < len(rest) && rest[off+k+1] == '\\' {
				return j + off + k + 2
			}
			off += k + 1
		}
		if bel >= 0 {
			return j + bel + 1
		}
		// Unterminated: treat the rest of the line as part of it, unless
		// it is long enough to be real output.
		if len(rest) > 256 {
			if k := bytes.IndexByte(rest, ' '); k >= 0 {
				return j + k
			}
		}
		return len(line)
	default: // Two-byte escapes such as ESC 7, ESC =, ESC ( B.
		if line[j] == '(' || line[j] == ')' {
			return min(j+2, len(line))
		}
		return j + 1
	}
}

// plainRun returns the length of the prefix of b without special bytes. It
// tests eight bytes at a time: the lowest byte flagged is the first one
// below 0x20 or equal to 0x7f (a TAB, which is not special, among them). A
// byte below 0x20 borrows when 0x20 is taken from it, which may flag the
// bytes above it too, never one below; 0x7f is the one ASCII byte that its
// low seven bits plus one make 0x80. The last bytes are tested as part of
// b's last eight.
func plainRun(b []byte) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	flagged := func(x uint64) uint64 {
		return (x - ones*0x20 | ((x &^ highs) + ones)) &^ x & highs
	}
	i := 0
	for i+8 <= len(b) {
		m := flagged(binary.LittleEndian.Uint64(b[i:]))
		if m == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(m) / 8
		if specialByte[b[i]] {
			return i
		}
		i++ // a TAB
	}
	if i < len(b) && len(b) >= 8 {
		m := flagged(binary.LittleEndian.Uint64(b[len(b)-8:])) >> (8 * (8 - (len(b) - i)))
		for m != 0 {
			k := i + bits.TrailingZeros64(m)/8
			if specialByte[b[k]] {
				return k
			}
			m &= m - 1
		}
		return len(b)
	}
	for i < len(b) && !specialByte[b[i]] {
		i++
	}
	return i
}
