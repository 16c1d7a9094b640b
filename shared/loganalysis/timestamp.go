package loganalysis

// timestampPrefix returns the length of the ISO-8601 timestamp that b starts
// with, with the space or tab after it, or 0 when b starts with none. It
// takes the forms CI systems put before each line: "2026-11-20T10:00:09Z",
// "2026-11-20T10:00:09.2000000Z" and "2026-11-20T10:00:09.123+00:00". A
// timestamp must end the line or be followed by a space or tab.
func timestampPrefix(b []byte) int {
	// The cheap test first: most lines fail it at the first byte.
	if len(b) < 20 || !isDigit(b[0]) || b[4] != '-' || b[10] != 'T' {
		return 0
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if !isDigit(b[i]) {
			return 0
		}
	}
	if b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return 0
	}
	i := 19
	if b[i] == '.' || b[i] == ',' {
		n := digits(b[i+1:])
		if n == 0 {
			return 0
		}
		i += 1 + n
	}
	switch {
	case i < len(b) && b[i] == 'Z':
		i++
	case i+6 <= len(b) && (b[i] == '+' || b[i] == '-') && isDigit(b[i+1]) && isDigit(b[i+2]) &&
		b[i+3] == ':' && isDigit(b[i+4]) && isDigit(b[i+5]):
		i += 6
	default:
		return 0
	}
	switch {
	case i == len(b):
		return i
	case b[i] == ' ' || b[i] == '\t':
		return i + 1
	}
	return 0
}
