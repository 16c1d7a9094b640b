package localstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged marks a data directory the store refuses to open: a file is
// missing, empty, cut short or garbled, so that opening it would crash, lose
// sealed secrets, or silently start over. The error names the file and the
// problem; the way out is to restore the file, or to move the directory
// aside and start over.
var ErrDamaged = errors.New("local data damaged")

// damaged is an ErrDamaged naming the file and saying what is wrong with it.
type damaged struct {
	path    string
	problem string
	cause   error
}

func (e *damaged) Error() string {
	s := fmt.Sprintf("%s %s; restore it from a backup", e.path, e.problem)
	if e.cause != nil {
		s += " (" + e.cause.Error() + ")"
	}
	return s
}

func (e *damaged) Unwrap() []error { return []error{ErrDamaged, e.cause} }

func damagedFile(path, problem string, cause error) error {
	return &damaged{path: path, problem: problem, cause: cause}
}

// openTimeout is how long Open waits for another process to let go of the
// database before saying it is in use.
const openTimeout = time.Second

// maxCheckErrors bounds how many of bbolt's consistency findings an error
// repeats: the first few say enough.
const maxCheckErrors = 3

// Open opens the store in dir, creating dir (mode 0700), the database and
// the key file on a fresh start. It refuses, with an error naming the file
// (errors.Is ErrDamaged):
//   - an empty database file, or one without the key file's companion
//     database (the key file exists, so a database existed and is lost);
//   - a database that is cut short, garbled, or fails bbolt's consistency
//     check: it is read and checked whole before use, never trusted to
//     crash later;
//   - a missing key file while the database holds sealed secrets: a new key
//     would open none of them. (With no sealed secret, a new key loses
//     nothing and is made.)
//   - a connection record that does not decode, or a sealed secret that does
//     not open with the key file (a replaced key file, a garbled value).
//
// It also fails when the key file can be read or written by group or
// others, or when another process holds the database.
func Open(dir string) (*Store, error) {
	db, aead, err := openDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open local store: %w", err)
	}
	return &Store{db: db, aead: aead}, nil
}

func openDir(dir string) (*bolt.DB, sealer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, sealer{}, err
	}
	dbPath, keyPath := filepath.Join(dir, DBFile), filepath.Join(dir, KeyFile)

	// An existing key file is checked first: a refused one creates nothing.
	key, err := readKey(keyPath)
	keyExists := !errors.Is(err, fs.ErrNotExist)
	if keyExists && err != nil {
		return nil, sealer{}, err
	}

	info, err := os.Stat(dbPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if keyExists {
			// The database is made before the key on a fresh start, so a
			// key without a database means the database was lost.
			return nil, sealer{}, damagedFile(dbPath, fmt.Sprintf(
				"is missing, but its key file %s is there: the connection and sealed secrets it held are gone", keyPath), nil)
		}
	case err != nil:
		return nil, sealer{}, fmt.Errorf("stat %s: %w", dbPath, err)
	case !info.Mode().IsRegular():
		return nil, sealer{}, damagedFile(dbPath, "is not a regular file", nil)
	case info.Size() == 0:
		return nil, sealer{}, damagedFile(dbPath, "is empty (0 bytes): what it held is lost", nil)
	default:
		if err := checkFile(dbPath, info.Size()); err != nil {
			return nil, sealer{}, err
		}
	}

	db, err := openChecked(dbPath)
	if err != nil {
		return nil, sealer{}, err
	}
	if !keyExists {
		n, err := countSealed(db)
		if err == nil && n > 0 {
			err = damagedFile(keyPath, fmt.Sprintf(
				"is missing, but %s holds %d secrets sealed with it, which no new key can open", dbPath, n), nil)
		}
		if err == nil {
			key, err = loadOrCreateKey(keyPath)
		}
		if err != nil {
			_ = db.Close()
			return nil, sealer{}, err
		}
	}
	aead, err := newSealer(key)
	if err == nil {
		err = checkContents(db, aead, dbPath, keyPath)
	}
	if err == nil {
		err = createBuckets(db)
	}
	if err != nil {
		_ = db.Close()
		return nil, sealer{}, err
	}
	return db, aead, nil
}

// checkContents reads back what the store keeps, so that damage no page
// check sees is refused at the start rather than answered later with
// "storage unavailable, try again" for ever: every connection record must
// decode, and every sealed secret must open with the key file. When none
// opens, the key file is the likely culprit (replaced by another); when
// some do, those that do not were garbled or tampered with.
func checkContents(db *bolt.DB, aead sealer, dbPath, keyPath string) error {
	return db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketConnections); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				if _, err := decodeRecord(string(k), v); err != nil {
					return damagedFile(dbPath, fmt.Sprintf("holds a connection record of tenant %q that does not read back", k), err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketSecrets)
		if b == nil {
			return nil
		}
		var total int
		var bad []string
		err := b.ForEach(func(k, v []byte) error {
			total++
			if _, err := aead.open(string(k), v); err != nil {
				bad = append(bad, string(k))
			}
			return nil
		})
		switch {
		case err != nil:
			return err
		case len(bad) == 0:
			return nil
		case len(bad) == total:
			return damagedFile(keyPath, fmt.Sprintf(
				"does not open any of the %d secrets sealed in %s: it is not the key they were sealed with", total, dbPath), nil)
		default:
			return damagedFile(dbPath, fmt.Sprintf(
				"holds %d of %d sealed secrets that do not open with %s (garbled or tampered with), the first %q", len(bad), total, keyPath, bad[0]), nil)
		}
	})
}

// bbolt's file layout, read to check a database before bbolt maps it: each
// meta page (pages 0 and 1) holds a page header then the meta fields, and a
// checksum (FNV-64a) over the fields before it.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltNoFreelist   = ^uint64(0)
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	metaMagicAt      = pageHeaderSize + 0
	metaVersionAt    = pageHeaderSize + 4
	metaPageSizeAt   = pageHeaderSize + 8
	metaRootAt       = pageHeaderSize + 16 // the root bucket's page, then its sequence
	metaFreelistAt   = pageHeaderSize + 32
	metaPgidAt       = pageHeaderSize + 40 // the high water mark: pages in use
	metaTxidAt       = pageHeaderSize + 48
	metaChecksumAt   = pageHeaderSize + 56
	metaSize         = metaChecksumAt + 8
	minPageSize      = 1 << 10 // bbolt's smallest page
	maxPageSize      = 1 << 24 // and its largest
	probeMetaOffsets = 15      // second meta page offsets tried: 1 KiB << 0..14
)

// boltMeta is what checkFile needs of a meta page.
type boltMeta struct {
	pageSize       uint32
	root, freelist uint64
	pgid, txid     uint64
}

// readMeta reads the meta page at off; ok is false when it is not one
// (wrong magic, version or checksum).
func readMeta(f io.ReaderAt, off int64) (boltMeta, bool) {
	var b [metaSize]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return boltMeta{}, false
	}
	le := binary.LittleEndian
	h := fnv.New64a()
	_, _ = h.Write(b[pageHeaderSize:metaChecksumAt])
	if le.Uint32(b[metaMagicAt:]) != boltMagic || le.Uint32(b[metaVersionAt:]) != boltVersion ||
		le.Uint64(b[metaChecksumAt:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{
		pageSize: le.Uint32(b[metaPageSizeAt:]),
		root:     le.Uint64(b[metaRootAt:]),
		freelist: le.Uint64(b[metaFreelistAt:]),
		pgid:     le.Uint64(b[metaPgidAt:]),
		txid:     le.Uint64(b[metaTxidAt:]),
	}, true
}

// checkFile checks what bbolt would trust blindly: that a meta page is
// sound, that every page it counts lies inside the file, and that the pages
// in use form a sound tree (walkPages). bbolt maps the file and reads pages
// through the mapping, so a page past the end of a truncated file is a
// SIGBUS, not an error, and a garbled page count can keep its own check
// busy for hours.
func checkFile(path string, size int64) error {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil // bbolt writes native order; the layout above is little-endian
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()

	m0, ok0 := readMeta(f, 0)
	var m1 boltMeta
	ok1 := false
	if ok0 {
		m1, ok1 = readMeta(f, int64(m0.pageSize))
	} else {
		for i := range probeMetaOffsets {
			if m1, ok1 = readMeta(f, int64(minPageSize)<<i); ok1 && m1.pageSize == minPageSize<<i {
				break
			}
			ok1 = false
		}
	}
	// bbolt uses the newer of the two sound meta pages.
	m := m0
	switch {
	case !ok0 && !ok1:
		return damagedFile(path, "is not a kitefix database, or both its header pages are garbled", nil)
	case !ok0 || (ok1 && m1.txid > m0.txid):
		m = m1
	}
	ps := uint64(m.pageSize)
	switch {
	case ps < minPageSize || ps > maxPageSize || ps&(ps-1) != 0:
		return damagedFile(path, fmt.Sprintf("has a garbled header: page size %d", ps), nil)
	case m.pgid < 2 || m.root >= m.pgid || (m.freelist != boltNoFreelist && m.freelist >= m.pgid):
		return damagedFile(path, "has a garbled header: its pages are out of bounds", nil)
	case m.pgid > uint64(size)/ps:
		return damagedFile(path, fmt.Sprintf("is cut short: it is %d bytes, its pages need %d", size, m.pgid*ps), nil)
	}
	if err := walkPages(f, m); err != nil {
		return damagedFile(path, "is garbled", err)
	}
	return nil
}

// openChecked opens the database, creating it when missing, reads every
// page in use and runs bbolt's consistency check. It writes nothing.
// A garbled page that makes bbolt panic, or fault on a bad address, is an
// error too: this runs with faults turned into panics, and recovers.
func openChecked(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damagedFile(path, "is garbled", fmt.Errorf("%v", r))
			if db != nil {
				_ = db.Close()
				db = nil
			}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, fmt.Errorf("%s is in use by another process", path)
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
			return nil, damagedFile(path, "is not a kitefix database, or is garbled", err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := checkDB(db); err != nil {
		_ = db.Close()
		return nil, damagedFile(path, "is garbled", err)
	}
	return db, nil
}

// createBuckets makes the store's buckets where they are missing.
func createBuckets(db *bolt.DB) error {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketConnections, bucketRoutes, bucketSecrets} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create buckets: %w", err)
	}
	return nil
}

// checkDB reads every key and value of every bucket, then runs bbolt's own
// check (free pages, page references, key order). The read comes first
// and in this goroutine, where a fault is a panic openChecked recovers:
// bbolt checks in a goroutine of its own.
func checkDB(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return readAll(b) })
		if err != nil {
			return err
		}
		var errs []error
		for err := range tx.Check() {
			if len(errs) < maxCheckErrors {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// readAll reads every key and value in b and the buckets inside it, byte
// by byte: a key or value a garbled page points outside the file faults
// here, not later.
func readAll(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		_ = crc32.ChecksumIEEE(k)
		if v != nil {
			_ = crc32.ChecksumIEEE(v)
			return nil
		}
		child := b.Bucket(k)
		if child == nil {
			return fmt.Errorf("bucket %q: missing", k)
		}
		return readAll(child)
	})
}

// countSealed counts the sealed secrets in db.
func countSealed(db *bolt.DB) (int, error) {
	n := 0
	err := db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSecrets); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count sealed secrets: %w", err)
	}
	return n, nil
}

// MoveAside moves the data directory dir to dir.broken-<UTC time> (with a
// -N suffix should that exist), so that the next Open starts over; it
// deletes nothing. It returns where dir went, or "" when there was no dir.
// It refuses while another process has the database open.
func MoveAside(dir string, now time.Time) (string, error) {
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("move %s aside: %w", dir, err)
	}
	if err := checkNotInUse(filepath.Join(dir, DBFile)); err != nil {
		return "", fmt.Errorf("move %s aside: %w", dir, err)
	}
	base := dir + ".broken-" + now.UTC().Format("20060102T150405Z")
	for i := 1; ; i++ {
		to := base
		if i > 1 {
			to = fmt.Sprintf("%s-%d", base, i)
		}
		// Rename would replace an empty directory: never reuse a name.
		if _, err := os.Lstat(to); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("move %s aside: %w", dir, err)
		}
		if err := os.Rename(dir, to); err != nil {
			return "", fmt.Errorf("move %s aside: %w", dir, err)
		}
		return to, nil
	}
}

// checkNotInUse fails when another process holds the database at path. A
// read-only open takes a shared lock and reads no more than the two header
// pages, which bbolt checks lie inside the file, so it is safe on a
// damaged file; how it fails otherwise does not matter here.
func checkNotInUse(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil // no database, no holder
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("%s is in use by another process: stop it first", path)
	}
	if err == nil {
		_ = db.Close()
	}
	return nil
}
