package loganalysis

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
)

// maxBaselineLines caps the distinct normalised lines a [Baseline] remembers.
// A passing CI log rarely has more than a few tens of thousands of distinct
// lines once numbers, ids and paths are normalised away; 1<<18 hashes of 8
// bytes in an open-addressed table at most half full take 4 MiB, whatever the
// size of the passing log. Lines after the cap is reached are not remembered,
// so they can still signal a failure: the cap costs precision, never a
// failure.
const maxBaselineLines = 1 << 18

// baselineSlots is the largest size of the hash table: twice the cap keeps
// probes short. The table starts at minBaselineSlots and doubles as lines
// come, so a short passing log takes little memory.
const (
	baselineSlots    = 2 * maxBaselineLines
	minBaselineSlots = 1 << 10
)

// Baseline is what a passing log of the same job looked like: a capped set of
// hashes of its normalised lines, not the log itself. Lines of a failed log
// that hash into it are ordinary output (see [Options].Baseline). A Baseline
// is read-only once made and safe for concurrent use.
type Baseline struct {
	seed  maphash.Seed
	slots []uint64 // open addressing; 0 marks an empty slot
	n     int
	lines int64
	full  bool
}

// NewBaseline reads a passing log from r in one streaming pass and remembers
// the hashes of its normalised lines: timestamps, durations, counters, ids,
// hexadecimal hashes and temporary paths are replaced by placeholders before
// hashing, so the same output in another run hashes the same. It returns an
// error only when r fails or ctx ends.
func NewBaseline(ctx context.Context, r io.Reader) (*Baseline, error) {
	b := &Baseline{seed: maphash.MakeSeed()}
	lr := newLineReader(r)
	var clean, norm []byte
	for {
		if lr.lines&0x3fff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("read baseline log: %w", err)
			}
		}
		raw, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read baseline log: %w", err)
		}
		clean = Clean(clean[:0], raw)
		// Only the start of a long line counts, as in Contains.
		norm = normalizeLine(norm[:0], clean[:min(len(clean), maxLineText)])
		if len(norm) == 0 {
			continue
		}
		b.add(b.hash(norm))
	}
	b.lines = lr.lines
	return b, nil
}

// Len returns how many distinct normalised lines the baseline holds.
func (b *Baseline) Len() int { return b.n }

// Lines returns how many lines the passing log had.
func (b *Baseline) Lines() int64 { return b.lines }

// Full reports whether the passing log had more distinct lines than the cap,
// so that some of them were not remembered.
func (b *Baseline) Full() bool { return b.full }

func (b *Baseline) hash(norm []byte) uint64 {
	h := maphash.Bytes(b.seed, norm)
	if h == 0 {
		h = 1 // 0 marks an empty slot
	}
	return h
}

func (b *Baseline) add(h uint64) {
	if b.slots == nil {
		b.slots = make([]uint64, minBaselineSlots)
	}
	if 2*(b.n+1) > len(b.slots) && len(b.slots) < baselineSlots {
		b.grow()
	}
	mask := uint64(len(b.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch b.slots[i] {
		case h:
			return
		case 0:
			if b.n >= maxBaselineLines {
				b.full = true
				return
			}
			b.slots[i] = h
			b.n++
			return
		}
	}
}

// grow doubles the table: it stays at most half full, and no larger than
// the log needs.
func (b *Baseline) grow() {
	old := b.slots
	b.slots = make([]uint64, 2*len(old))
	mask := uint64(len(b.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for b.slots[i] != 0 {
			i = (i + 1) & mask
		}
		b.slots[i] = h
	}
}

func (b *Baseline) has(h uint64) bool {
	if b == nil || b.slots == nil {
		return false
	}
	mask := uint64(len(b.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch b.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// Contains reports whether a cleaned line (see [Clean]) also occurs in the
// passing log, after normalisation. Blank lines never do.
func (b *Baseline) Contains(cleaned []byte) bool {
	if b == nil {
		return false
	}
	var buf [maxLineText]byte
	norm := normalizeLine(buf[:0], cleaned[:min(len(cleaned), maxLineText)])
	return len(norm) > 0 && b.has(b.hash(norm))
}

// normalizeLine appends to dst a cleaned line with what differs between two
// runs of the same job replaced by placeholders, and returns the extended
// slice. It is empty for a blank line.
//
//   - A field (a run of non-blank bytes) that is a temporary path
//     (/tmp/..., /var/folders/..., ...\Temp\...) becomes "<tmp>": its random
//     directory names differ from run to run.
//   - Inside a field, a word (letters, digits, '.', '_', '-') holding a digit
//     becomes '#': timestamps (10:00:09.123 gives #:#:#), durations (1.2s,
//     350ms), counters (12/40, 75%), versions, ports, line numbers, build
//     numbers, and ids and hashes that hold a digit. A word of eight or more
//     hexadecimal letters becomes '#' too (an id that holds no digit).
//   - Runs of spaces and tabs become one space; leading and trailing ones go.
//
// Other punctuation is kept, so the shape of the line still counts.
func normalizeLine(dst, c []byte) []byte {
	start := len(dst)
	temp := tempPath(c) // most lines name no temporary path: look once
	for i := 0; i < len(c); {
		if c[i] == ' ' || c[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(c) && c[j] != ' ' && c[j] != '\t' {
			j++
		}
		if len(dst) > start {
			dst = append(dst, ' ')
		}
		if field := c[i:j]; temp && tempPath(field) {
			dst = append(dst, "<tmp>"...)
		} else {
			dst = normalizeField(dst, field)
		}
		i = j
	}
	return dst
}

// normalizeField appends one blank-free field with its variable words
// replaced (see normalizeLine).
func normalizeField(dst, f []byte) []byte {
	for i := 0; i < len(f); {
		if !wordByte[f[i]] {
			dst = append(dst, f[i])
			i++
			continue
		}
		j := i
		hasDigit, hexLetters, hex := false, 0, true
		for ; j < len(f) && wordByte[f[j]]; j++ {
			switch b := f[j]; {
			case isDigit(b):
				hasDigit = true
			case b|0x20 >= 'a' && b|0x20 <= 'f':
				hexLetters++
			default:
				hex = false
			}
		}
		if hasDigit || hex && hexLetters >= 8 {
			dst = append(dst, '#')
		} else {
			dst = append(dst, f[i:j]...)
		}
		i = j
	}
	return dst
}

// wordByte marks the bytes that make up a word for normalizeField.
var wordByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		t[c] = isLetter(b) || isDigit(b) || b >= 0x80 || b == '.' || b == '_' || b == '-'
	}
	return t
}()

// tempPath reports whether a word is a path inside a temporary directory.
func tempPath(w []byte) bool { return tempDirs.in(w) }

// tempDirs are the temporary directories of Linux, macOS and Windows
// runners.
var tempDirs = newPhraseMatcher("/tmp/", "/var/folders/", "/private/var/", "/var/tmp/", "/temp/",
	`\Temp\`, `\temp\`, `\TEMP\`, `\tmp\`)
