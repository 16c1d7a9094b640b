// Package ingesttest is the behaviour every store of webhook deliveries
// shares (the local store and DynamoDB), as a suite each adapter's tests
// run against their own store.
package ingesttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/storage"
)

// Store is what the suite exercises: the claims the webhook handler and
// the reconcile pass use, and the last-delivery note.
type Store interface {
	ClaimDelivery(ctx context.Context, tenant, key string, expires time.Time) error
	ConfirmDelivery(ctx context.Context, tenant, key string, expires time.Time) error
	ReleaseDelivery(ctx context.Context, tenant, key string) error
	HasDelivery(ctx context.Context, tenant, key string) (bool, error)
	NoteDelivery(ctx context.Context, tenant string, at time.Time) error
	LastDelivery(ctx context.Context, tenant string) (time.Time, error)
	ForgetLastDelivery(ctx context.Context, tenant string) error
}

func unique(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// concurrentClaims is how many claims of one key race in the suite.
const concurrentClaims = 20

// RunDeliveries runs the suite; open returns a store, fresh or shared (the
// suite's tenants are unique).
func RunDeliveries(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	week := func() time.Time { return time.Now().Add(7 * 24 * time.Hour) }

	t.Run("claim once", func(t *testing.T) {
		s, tenant := open(t), unique("tenant")
		if err := s.ClaimDelivery(ctx, tenant, "job:a", week()); err != nil {
			t.Fatalf("first claim: %v", err)
		}
		if err := s.ClaimDelivery(ctx, tenant, "job:a", week()); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("second claim: %v, want storage.ErrConflict", err)
		}
		if has, err := s.HasDelivery(ctx, tenant, "job:a"); err != nil || !has {
			t.Errorf("HasDelivery = %t, %v; want true", has, err)
		}
		if has, err := s.HasDelivery(ctx, tenant, "job:b"); err != nil || has {
			t.Errorf("HasDelivery of another key = %t, %v; want false", has, err)
		}
		if err := s.ClaimDelivery(ctx, unique("other"), "job:a", week()); err != nil {
			t.Errorf("the same key for another tenant: %v", err)
		}
	})

	t.Run("release", func(t *testing.T) {
		s, tenant := open(t), unique("tenant")
		if err := s.ReleaseDelivery(ctx, tenant, "build:x"); err != nil {
			t.Fatalf("release of a missing claim: %v", err)
		}
		if err := s.ClaimDelivery(ctx, tenant, "build:x", week()); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseDelivery(ctx, tenant, "build:x"); err != nil {
			t.Fatal(err)
		}
		if has, err := s.HasDelivery(ctx, tenant, "build:x"); err != nil || has {
			t.Errorf("HasDelivery after release = %t, %v; want false", has, err)
		}
		if err := s.ClaimDelivery(ctx, tenant, "build:x", week()); err != nil {
			t.Errorf("claim after release: %v", err)
		}
	})

	t.Run("expired claim is absent", func(t *testing.T) {
		s, tenant := open(t), unique("tenant")
		if err := s.ClaimDelivery(ctx, tenant, "job:old", time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if has, err := s.HasDelivery(ctx, tenant, "job:old"); err != nil || has {
			t.Errorf("HasDelivery of an expired claim = %t, %v; want false", has, err)
		}
		if err := s.ClaimDelivery(ctx, tenant, "job:old", week()); err != nil {
			t.Errorf("claim over an expired one: %v", err)
		}
		if has, err := s.HasDelivery(ctx, tenant, "job:old"); err != nil || !has {
			t.Errorf("HasDelivery after reclaiming = %t, %v; want true", has, err)
		}
	})

	t.Run("confirm extends a claim", func(t *testing.T) {
		s, tenant := open(t), unique("tenant")
		// A claim whose lease has run out is confirmed after its send:
		// it lasts again, and a second claim conflicts.
		if err := s.ClaimDelivery(ctx, tenant, "job:lease", time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfirmDelivery(ctx, tenant, "job:lease", week()); err != nil {
			t.Fatalf("confirm: %v", err)
		}
		if has, err := s.HasDelivery(ctx, tenant, "job:lease"); err != nil || !has {
			t.Errorf("HasDelivery after confirm = %t, %v; want true", has, err)
		}
		if err := s.ClaimDelivery(ctx, tenant, "job:lease", week()); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("claim after confirm: %v, want storage.ErrConflict", err)
		}
		// A confirm whose claim is gone writes it: the work is queued.
		if err := s.ConfirmDelivery(ctx, tenant, "job:gone", week()); err != nil {
			t.Fatalf("confirm without a claim: %v", err)
		}
		if has, err := s.HasDelivery(ctx, tenant, "job:gone"); err != nil || !has {
			t.Errorf("HasDelivery after confirming a missing claim = %t, %v; want true", has, err)
		}
		if has, err := s.HasDelivery(ctx, unique("other"), "job:lease"); err != nil || has {
			t.Errorf("HasDelivery of another tenant = %t, %v; want false", has, err)
		}
	})

	t.Run("concurrent claims: one wins", func(t *testing.T) {
		s, tenant := open(t), unique("tenant")
		var wg sync.WaitGroup
		errs := make([]error, concurrentClaims)
		for i := range concurrentClaims {
			wg.Go(func() { errs[i] = s.ClaimDelivery(ctx, tenant, "job:race", week()) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrConflict):
				t.Errorf("claim: %v, want nil or storage.ErrConflict", err)
			}
		}
		if won != 1 {
			t.Errorf("%d claims won, want exactly 1", won)
		}
	})

	t.Run("last delivery", func(t *testing.T) {
		s, tenant := open(t), unique("tenant")
		if at, err := s.LastDelivery(ctx, tenant); err != nil || !at.IsZero() {
			t.Fatalf("LastDelivery before any = %v, %v; want zero", at, err)
		}
		t1 := time.Date(2026, 7, 20, 15, 6, 41, 123456789, time.UTC)
		if err := s.NoteDelivery(ctx, tenant, t1); err != nil {
			t.Fatal(err)
		}
		if err := s.NoteDelivery(ctx, tenant, t1.Add(-time.Minute)); err != nil {
			t.Fatalf("noting an earlier delivery: %v", err)
		}
		if at, err := s.LastDelivery(ctx, tenant); err != nil || !at.Equal(t1) {
			t.Errorf("LastDelivery = %v, %v; want %v", at, err, t1)
		}
		t2 := t1.Add(time.Hour)
		if err := s.NoteDelivery(ctx, tenant, t2); err != nil {
			t.Fatal(err)
		}
		if at, err := s.LastDelivery(ctx, tenant); err != nil || !at.Equal(t2) {
			t.Errorf("LastDelivery = %v, %v; want %v", at, err, t2)
		}
		other := unique("other")
		if err := s.NoteDelivery(ctx, other, t1); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetLastDelivery(ctx, tenant); err != nil {
			t.Fatalf("ForgetLastDelivery: %v", err)
		}
		if at, err := s.LastDelivery(ctx, tenant); err != nil || !at.IsZero() {
			t.Errorf("LastDelivery after forgetting = %v, %v; want zero", at, err)
		}
		if at, err := s.LastDelivery(ctx, other); err != nil || !at.Equal(t1) {
			t.Errorf("another tenant's LastDelivery after forgetting = %v, %v; want %v", at, err, t1)
		}
		if err := s.ForgetLastDelivery(ctx, tenant); err != nil {
			t.Errorf("forgetting again: %v", err)
		}
	})
}
