package localstore

import (
	"encoding/binary"
	"fmt"
	"io"
)

// bbolt's page layout, as walkPages reads it from the file.
const (
	pageBranch      = 0x01
	pageLeaf        = 0x02
	pageFreelist    = 0x10
	leafIsBucket    = 0x01
	elementSize     = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeaderLen = 16 // root pgid u64 (0: the bucket's page follows inline), sequence u64
	freelistBigMark = 0xFFFF
	// maxTreeDepth bounds how deep walkPages follows branch pages: a B+tree
	// of a few levels holds far more than any local store does.
	maxTreeDepth = 32
)

// pageWalk reads a database's pages from its file (never through a memory
// map, so that a page past the end of the file is an error, not a fault),
// checking that each page in use is where its parent says, lies below the
// high water mark, is used once, and keeps its elements inside itself.
type pageWalk struct {
	f    io.ReaderAt
	ps   uint64
	hwm  uint64
	used map[uint64]bool
}

// walkPages checks the pages of the tree rooted at m.root and the freelist.
func walkPages(f io.ReaderAt, m boltMeta) error {
	w := &pageWalk{f: f, ps: uint64(m.pageSize), hwm: m.pgid, used: map[uint64]bool{0: true, 1: true}}
	if m.freelist != boltNoFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return err
		}
	}
	return w.tree(m.root, 0)
}

// page reads page id whole (with its overflow pages) and marks it used.
func (w *pageWalk) page(id uint64) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d: out of bounds (%d pages)", id, w.hwm)
	}
	var h [pageHeaderSize]byte
	if _, err := w.f.ReadAt(h[:], int64(id*w.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(h[0:]); got != id {
		return nil, fmt.Errorf("page %d: says it is page %d", id, got)
	}
	overflow := uint64(le.Uint32(h[12:]))
	if id+overflow >= w.hwm {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the last page", id, overflow)
	}
	for p := id; p <= id+overflow; p++ {
		if w.used[p] {
			return nil, fmt.Errorf("page %d: used twice", p)
		}
		w.used[p] = true
	}
	buf := make([]byte, (overflow+1)*w.ps)
	if _, err := w.f.ReadAt(buf, int64(id*w.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

func (w *pageWalk) freelist(id uint64) error {
	buf, err := w.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	le := binary.LittleEndian
	if flags := le.Uint16(buf[8:]); flags != pageFreelist {
		return fmt.Errorf("freelist page %d: flags %#x", id, flags)
	}
	start, n := uint64(pageHeaderSize), uint64(le.Uint16(buf[10:]))
	if n == freelistBigMark {
		n = le.Uint64(buf[start:])
		start += 8
	}
	if n > (uint64(len(buf))-start)/8 {
		return fmt.Errorf("freelist page %d: %d ids do not fit", id, n)
	}
	for i := range n {
		if free := le.Uint64(buf[start+8*i:]); free < 2 || free >= w.hwm {
			return fmt.Errorf("freelist page %d: free page %d out of bounds", id, free)
		}
	}
	return nil
}

// tree checks the branch or leaf page id and the pages below it.
func (w *pageWalk) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	buf, err := w.page(id)
	if err != nil {
		return err
	}
	return w.elements(id, buf, depth, false)
}

// elements checks the elements of page buf (id 0: an inline page).
func (w *pageWalk) elements(id uint64, buf []byte, depth int, inline bool) error {
	le := binary.LittleEndian
	if len(buf) < pageHeaderSize {
		return fmt.Errorf("inline page in page %d: short", id)
	}
	flags, count := le.Uint16(buf[8:]), uint64(le.Uint16(buf[10:]))
	if uint64(pageHeaderSize)+count*elementSize > uint64(len(buf)) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	switch {
	case flags == pageBranch && !inline:
		if count == 0 {
			return fmt.Errorf("page %d: empty branch", id)
		}
		for i := range count {
			at := pageHeaderSize + i*elementSize
			pos, ksize := uint64(le.Uint32(buf[at:])), uint64(le.Uint32(buf[at+4:]))
			if at+pos+ksize > uint64(len(buf)) {
				return fmt.Errorf("page %d: key %d runs past the page", id, i)
			}
			if err := w.tree(le.Uint64(buf[at+8:]), depth+1); err != nil {
				return err
			}
		}
	case flags == pageLeaf:
		for i := range count {
			at := pageHeaderSize + i*elementSize
			eflags := le.Uint32(buf[at:])
			pos, ksize, vsize := uint64(le.Uint32(buf[at+4:])), uint64(le.Uint32(buf[at+8:])), uint64(le.Uint32(buf[at+12:]))
			end := at + pos + ksize + vsize
			if end > uint64(len(buf)) {
				return fmt.Errorf("page %d: element %d runs past the page", id, i)
			}
			if eflags&leafIsBucket == 0 {
				continue
			}
			if inline {
				return fmt.Errorf("page %d: a bucket inside an inline bucket", id)
			}
			v := buf[at+pos+ksize : end]
			if len(v) < bucketHeaderLen {
				return fmt.Errorf("page %d: bucket %d has a short header", id, i)
			}
			var err error
			if root := le.Uint64(v); root != 0 {
				err = w.tree(root, depth+1)
			} else {
				err = w.elements(id, v[bucketHeaderLen:], depth+1, true)
			}
			if err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("page %d: flags %#x, want a branch or leaf page", id, flags)
	}
	return nil
}
