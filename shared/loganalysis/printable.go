package loganalysis

import (
	"encoding/binary"
	"unicode"
	"unicode/utf8"
)

// textLike reports whether a cleaned line is mostly printable text: at least
// nine in ten of the characters in its first 1024 bytes are printable
// (invalid UTF-8 counts one bad character a byte), so a short line must be
// wholly printable. Binary data read as a log is not, and a signal word that
// turns up in it by chance is no signal.
func textLike(c []byte) bool {
	c = c[:min(len(c), 1024)]
	// Printable ASCII, eight bytes at a time: no byte below 0x20 and none
	// at or above 0x7f.
	i := 0
	for ; i+8 <= len(c); i += 8 {
		x := binary.LittleEndian.Uint64(c[i:])
		if ((x-0x20*one8)&^x|(x&low8+one8)|x)&hi8 != 0 {
			break
		}
	}
	bad, n := 0, i
	for ; i < len(c); n++ {
		b := c[i]
		if b < utf8.RuneSelf {
			if b < 0x20 && b != '\t' || b == 0x7f {
				bad++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(c[i:])
		if r == utf8.RuneError && size == 1 || !unicode.IsPrint(r) {
			bad++
		}
		i += size
	}
	return bad*10 <= n
}
