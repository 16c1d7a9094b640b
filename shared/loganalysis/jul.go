package loganalysis

import "bytes"

// java.util.logging's SimpleFormatter writes a record as a header line, the
// date and the source ("Jul 30, 2019 12:41:38 AM com.acme.Server stop"), then
// "LEVEL: message" and, when the record carries one, the throwable: its
// toString, its "\tat ..." frames, "Caused by: ..." and "\t... 32 more". A
// record below WARNING reports what went on, not what went wrong: the
// exception and stack it carries are ordinary output, and so are those of a
// WARNING: a warning, however long its stack, is not the failure (SEVERE is
// the level of errors).

// julRecord follows the records java.util.logging writes.
type julRecord struct {
	header bool // the line before was a record's header
	level  bool // the line before was the level line of a record below SEVERE
	quiet  bool // in the throwable of a record below SEVERE
}

// line reports whether a line of text output belongs to the throwable of a
// record logged below SEVERE.
func (r *julRecord) line(c []byte) bool {
	header, level := r.header, r.level
	r.header, r.level = false, false
	switch {
	case header:
		r.level = julQuietLevel(c)
		r.quiet = false
		return false
	case level:
		// The throwable's toString, whatever the class prints: any line
		// but the next record's header or one with a log level of its
		// own ("[info] ..." from the tool that ran the program).
		r.quiet = len(c) > 0 && c[0] != ' ' && c[0] != '\t' && levelPrefix(c) == 0 && !julHeader(c)
	case r.quiet:
		r.quiet = len(c) > 0 && (c[0] == '\t' || c[0] == ' ') || bytes.HasPrefix(c, []byte("Caused by: "))
	}
	if !r.quiet {
		r.header = julHeader(c)
	}
	return r.quiet
}

// julHeaderLike is the cheap first test of julHeader, to spare most lines a
// call: "Mmm " at the start of a line long enough.
func julHeaderLike(c []byte) bool {
	return len(c) >= 24 && c[3] == ' ' && isUpper(c[0])
}

// julQuietLevel reports whether a record's level line is below SEVERE.
func julQuietLevel(c []byte) bool {
	for _, l := range [...]string{"WARNING: ", "INFO: ", "CONFIG: ", "FINE: ", "FINER: ", "FINEST: "} {
		if bytes.HasPrefix(c, []byte(l)) {
			return true
		}
	}
	return false
}

// julHeader reports whether a line is SimpleFormatter's header: "Mmm d, yyyy
// h:mm:ss AM source" (the month abbreviated, the hour from 1 to 12).
func julHeader(c []byte) bool {
	if !julHeaderLike(c) || !isLetter(c[1]) || !isLetter(c[2]) {
		return false
	}
	i := 4 + digits(c[4:min(len(c), 6)])
	if i == 4 || !bytes.HasPrefix(c[i:], []byte(", ")) {
		return false
	}
	i += 2
	if n := digits(c[i:]); n != 4 || i+n >= len(c) || c[i+n] != ' ' {
		return false
	}
	i += 5
	j := bytes.IndexByte(c[i:], ' ')
	if j < 7 || j > 8 || bytes.Count(c[i:i+j], []byte(":")) != 2 {
		return false
	}
	i += j + 1
	return bytes.HasPrefix(c[i:], []byte("AM ")) || bytes.HasPrefix(c[i:], []byte("PM "))
}
