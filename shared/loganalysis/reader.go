package loganalysis

import (
	"bufio"
	"errors"
	"io"
)

// maxKeep is how much of one raw line the analyzer keeps; the rest of a
// longer line is counted but not looked at.
const maxKeep = 4 << 10

// lineReader splits a stream on LF with bounded memory. Lines longer than
// maxKeep are truncated, but their bytes are still counted.
type lineReader struct {
	br    *bufio.Reader
	long  []byte
	bytes int64
	lines int64
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), long: make([]byte, 0, maxKeep)}
}

// next returns the next line without its LF. The slice is valid until the
// next call. It returns io.EOF when there are no more lines.
func (lr *lineReader) next() ([]byte, error) {
	b, err := lr.br.ReadSlice('\n')
	lr.bytes += int64(len(b))
	switch {
	case err == nil:
		lr.lines++
		return b[:len(b)-1], nil
	case errors.Is(err, bufio.ErrBufferFull):
		lr.long = append(lr.long[:0], b[:min(len(b), maxKeep)]...)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = lr.br.ReadSlice('\n')
			lr.bytes += int64(len(b))
			if n := maxKeep - len(lr.long); n > 0 {
				lr.long = append(lr.long, b[:min(len(b), n)]...)
			}
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		lr.lines++
		if n := len(lr.long); err == nil && n > 0 && lr.long[n-1] == '\n' {
			lr.long = lr.long[:n-1]
		}
		return lr.long, nil
	case err == io.EOF:
		if len(b) == 0 {
			return nil, io.EOF
		}
		lr.lines++
		return b, nil
	default:
		return nil, err
	}
}
