package localstore

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestReturnInFlightAfterACrash receives messages and "crashes" (closes
// the store without deleting them): after reopening, ReturnInFlight makes
// the received ones visible at once, keeps a delayed one hidden, and keeps
// the receive counts.
func TestReturnInFlightAfterACrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	for _, b := range []string{"in-flight", "delayed", "waiting"} {
		if err := s.Send(ctx, []byte(b), b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Receive(ctx, 2, time.Hour)
	if err != nil || len(got) != 2 {
		t.Fatalf("receive: %v %v", bodies(got), err)
	}
	if err := s.ChangeVisibility(ctx, got[1].ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	n, err := s.ReturnInFlight(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ReturnInFlight = %d, %v; want 1", n, err)
	}
	again, err := s.Receive(ctx, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"in-flight", "waiting"}, bodies(again)); diff != "" {
		t.Errorf("visible after the restart (-want +got):\n%s", diff)
	}
	if again[0].Receives != 2 {
		t.Errorf("receives of the returned message = %d; want 2 (the count survives)", again[0].Receives)
	}
	// Nothing is in flight twice over: a second call returns the two just
	// received, and none after they are settled.
	for _, m := range again {
		if err := s.Delete(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.ReturnInFlight(ctx); err != nil || n != 0 {
		t.Errorf("ReturnInFlight after settling = %d, %v; want 0", n, err)
	}
}
