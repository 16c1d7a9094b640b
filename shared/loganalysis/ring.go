package loganalysis

// ringSize is how many recent lines the analyzer remembers for context.
const ringSize = 16

// maxLineText caps the cleaned text kept for one line in excerpts.
const maxLineText = 512

// ringLine is one remembered line.
type ringLine struct {
	ln    int64
	kind  lineKind
	score int8
	prop  bool
	fresh bool // see textLine.fresh
	text  []byte
}

// ring remembers the last ringSize lines without allocating per line.
type ring struct {
	lines [ringSize]ringLine
	n     int // lines pushed so far, capped at ringSize
	next  int
}

func (r *ring) push(ln int64, kind lineKind, score int, prop, fresh bool, text []byte) *ringLine {
	e := &r.lines[r.next]
	if e.text == nil {
		e.text = make([]byte, 0, maxLineText)
	}
	e.ln, e.kind, e.score, e.prop, e.fresh = ln, kind, int8(score), prop, fresh
	e.text = appendCapped(e.text[:0], text)
	r.next = (r.next + 1) % ringSize
	if r.n < ringSize {
		r.n++
	}
	return e
}

// back returns the line pushed i pushes ago (0 is the latest), or nil.
func (r *ring) back(i int) *ringLine {
	if i >= r.n {
		return nil
	}
	return &r.lines[(r.next-1-i+2*ringSize)%ringSize]
}

// appendCapped appends at most maxLineText bytes of text to dst, cutting at a
// UTF-8 boundary.
func appendCapped(dst, text []byte) []byte {
	if len(text) <= maxLineText {
		return append(dst, text...)
	}
	n := maxLineText
	for n > maxLineText-4 && text[n]&0xc0 == 0x80 {
		n--
	}
	return append(dst, text[:n]...)
}
