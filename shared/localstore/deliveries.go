package localstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kitefix/kitefix/shared/storage"
)

var (
	// bucketDeliveries: tenant NUL key → claim expiry (Unix nanoseconds,
	// big-endian).
	bucketDeliveries = []byte("deliveries")
	// bucketActivity: tenant → when its webhook last delivered (RFC 3339).
	bucketActivity = []byte("webhook_activity")
)

func deliveryKey(tenant, key string) []byte {
	return []byte(tenant + "\x00" + key)
}

// ClaimDelivery records that tenant's work named key is queued, until
// expires. It returns storage.ErrConflict when an unexpired claim exists; an
// expired one is replaced.
func (s *Store) ClaimDelivery(ctx context.Context, tenant, key string, expires time.Time) error {
	if tenant == "" || key == "" {
		return errors.New("claim delivery: empty tenant or key")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("claim delivery: %w: %w", storage.ErrUnavailable, err)
	}
	now := time.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketDeliveries)
		if err != nil {
			return err
		}
		k := deliveryKey(tenant, key)
		if v := b.Get(k); len(v) == 8 && now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(v)))) {
			return storage.ErrConflict
		}
		return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(expires.UnixNano())))
	})
	if err != nil {
		return wrap("claim delivery", err)
	}
	return nil
}

// ConfirmDelivery sets the expiry of tenant's claim on key to expires, once
// its work is queued; it writes the claim when none is there (it lapsed and
// was released, say), since the work is queued either way.
func (s *Store) ConfirmDelivery(ctx context.Context, tenant, key string, expires time.Time) error {
	if tenant == "" || key == "" {
		return errors.New("confirm delivery: empty tenant or key")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("confirm delivery: %w: %w", storage.ErrUnavailable, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketDeliveries)
		if err != nil {
			return err
		}
		return b.Put(deliveryKey(tenant, key), binary.BigEndian.AppendUint64(nil, uint64(expires.UnixNano())))
	})
	if err != nil {
		return wrap("confirm delivery", err)
	}
	return nil
}

// ReleaseDelivery removes a claim, so the work can be queued again; a
// missing claim is fine.
func (s *Store) ReleaseDelivery(ctx context.Context, tenant, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("release delivery: %w: %w", storage.ErrUnavailable, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		if b == nil {
			return nil
		}
		return b.Delete(deliveryKey(tenant, key))
	})
	if err != nil {
		return wrap("release delivery", err)
	}
	return nil
}

// HasDelivery reports whether an unexpired claim exists for tenant's key.
func (s *Store) HasDelivery(ctx context.Context, tenant, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("get delivery: %w: %w", storage.ErrUnavailable, err)
	}
	var has bool
	now := time.Now()
	err := s.db.View(func(tx *bolt.Tx) error {
		v := getValue(tx, bucketDeliveries, deliveryKey(tenant, key))
		has = len(v) == 8 && now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(v))))
		return nil
	})
	if err != nil {
		return false, wrap("get delivery", err)
	}
	return has, nil
}

// NoteDelivery records that tenant's webhook delivered at at. An earlier
// time than the one stored changes nothing.
func (s *Store) NoteDelivery(ctx context.Context, tenant string, at time.Time) error {
	if tenant == "" {
		return errors.New("note delivery: empty tenant")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("note delivery: %w: %w", storage.ErrUnavailable, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketActivity)
		if err != nil {
			return err
		}
		if cur, err := time.Parse(time.RFC3339Nano, string(b.Get([]byte(tenant)))); err == nil && !at.After(cur) {
			return nil
		}
		return b.Put([]byte(tenant), []byte(at.UTC().Format(time.RFC3339Nano)))
	})
	if err != nil {
		return wrap("note delivery", err)
	}
	return nil
}

// ForgetLastDelivery removes the note of tenant's last delivery; a missing
// one is fine.
func (s *Store) ForgetLastDelivery(ctx context.Context, tenant string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("forget last delivery: %w: %w", storage.ErrUnavailable, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketActivity)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(tenant))
	})
	if err != nil {
		return wrap("forget last delivery", err)
	}
	return nil
}

// LastDelivery returns when tenant's webhook last delivered, or the zero
// time when it never did.
func (s *Store) LastDelivery(ctx context.Context, tenant string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, fmt.Errorf("get last delivery: %w: %w", storage.ErrUnavailable, err)
	}
	var at time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		v := getValue(tx, bucketActivity, []byte(tenant))
		if v == nil {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, string(v))
		if err != nil {
			return fmt.Errorf("decode last delivery: %w", err)
		}
		at = t
		return nil
	})
	if err != nil {
		return time.Time{}, wrap("get last delivery", err)
	}
	return at, nil
}
