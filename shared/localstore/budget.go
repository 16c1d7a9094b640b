package localstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kitefix/kitefix/shared/analysis"
)

// bucketBudget counts requests: key, NUL, unix minute → count (uint64).
var bucketBudget = []byte("request_budget")

var _ analysis.Budget = (*Store)(nil)

// TakeRequest counts one request in the minute starting at window if fewer
// than limit were counted, and reports whether it did. Counters of earlier
// minutes of the key are dropped.
func (s *Store) TakeRequest(ctx context.Context, key string, window time.Time, limit int) (bool, error) {
	_, ok, err := s.TakeRequestCount(ctx, key, window, limit)
	return ok, err
}

// TakeRequestCount is TakeRequest that also returns the minute's count
// once the request is counted (the limit when it was refused).
func (s *Store) TakeRequestCount(ctx context.Context, key string, window time.Time, limit int) (int, bool, error) {
	if key == "" || limit < 1 {
		return 0, false, errors.New("take request: empty key or limit below 1")
	}
	ok, count := false, limit
	err := s.update(ctx, "take request", func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketBudget)
		if err != nil {
			return err
		}
		prefix := tkey(key, "")
		k := tkey(key, strconv.FormatInt(window.Unix()/60, 10))
		var stale [][]byte
		c := b.Cursor()
		for ck, _ := c.Seek(prefix); ck != nil && bytes.HasPrefix(ck, prefix); ck, _ = c.Next() {
			if !bytes.Equal(ck, k) {
				stale = append(stale, bytes.Clone(ck))
			}
		}
		for _, sk := range stale {
			if err := b.Delete(sk); err != nil {
				return err
			}
		}
		var n uint64
		if v := b.Get(k); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		if n >= uint64(limit) {
			return nil
		}
		ok, count = true, int(n+1)
		return b.Put(k, binary.BigEndian.AppendUint64(nil, n+1))
	})
	return count, ok, err
}
