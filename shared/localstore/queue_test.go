package localstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/ingest/ingesttest"
	"github.com/kitefix/kitefix/shared/storage"
)

func TestDeliveriesContract(t *testing.T) {
	ingesttest.RunDeliveries(t, func(t *testing.T) ingesttest.Store { return openStore(t, t.TempDir()) })
}

func bodies(msgs []QueuedMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Body))
	}
	return out
}

func TestQueueOrderVisibilityAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	for i := range 3 {
		if err := s.Send(ctx, []byte(fmt.Sprint("m", i)), fmt.Sprint("d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Receive(ctx, 2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"m0", "m1"}, bodies(got)); diff != "" {
		t.Fatalf("first receive (-want +got):\n%s", diff)
	}
	if got[0].Receives != 1 || got[0].SentAt.IsZero() || got[0].ID == got[1].ID {
		t.Errorf("received %+v", got)
	}
	// The two received are hidden; the third is next.
	rest, err := s.Receive(ctx, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"m2"}, bodies(rest)); diff != "" {
		t.Fatalf("second receive (-want +got):\n%s", diff)
	}
	if none, err := s.Receive(ctx, 10, time.Hour); err != nil || len(none) != 0 {
		t.Fatalf("third receive = %v, %v; want nothing visible", bodies(none), err)
	}
	if pending, err := s.Pending(ctx); err != nil || len(pending) != 3 {
		t.Fatalf("Pending = %v, %v; want the three hidden messages", bodies(pending), err)
	}
	// Delete one; make the other visible again.
	if err := s.Delete(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, got[0].ID); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
	if err := s.ChangeVisibility(ctx, got[1].ID, 0); err != nil {
		t.Fatal(err)
	}
	again, err := s.Receive(ctx, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || string(again[0].Body) != "m1" || again[0].Receives != 2 {
		t.Errorf("after ChangeVisibility: %+v, want m1 received a second time", again)
	}
	if err := s.ChangeVisibility(ctx, got[0].ID, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ChangeVisibility of a deleted message: %v, want storage.ErrNotFound", err)
	}
	if err := s.Delete(ctx, "not-an-id"); err == nil {
		t.Errorf("Delete of a malformed id succeeded")
	}
}

func TestQueueDedupeWhileWaiting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	for range 3 {
		if err := s.Send(ctx, []byte("job"), "tenant:job:1"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Receive(ctx, 10, time.Hour)
	if err != nil || len(got) != 1 {
		t.Fatalf("Receive = %v, %v; want one message", bodies(got), err)
	}
	if err := s.Delete(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	// Once handled, the same work may be queued again (a later retry).
	if err := s.Send(ctx, []byte("job"), "tenant:job:1"); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Receive(ctx, 10, time.Hour); err != nil || len(again) != 1 {
		t.Errorf("Receive after delete and send = %v, %v; want one message", bodies(again), err)
	}
}

func TestQueueDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	if err := s.Send(ctx, []byte("poison"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, []byte("fine"), ""); err != nil {
		t.Fatal(err)
	}
	var poisonID string
	for i := 1; i <= MaxReceives; i++ {
		got, err := s.Receive(ctx, 1, 0)
		if err != nil || len(got) != 1 || string(got[0].Body) != "poison" || got[0].Receives != i {
			t.Fatalf("receive %d = %+v, %v; want poison, received %d times", i, got, err, i)
		}
		poisonID = got[0].ID
	}
	// The next receive finds it at the limit: it moves aside and the next
	// message comes instead.
	got, err := s.Receive(ctx, 1, time.Hour)
	if err != nil || len(got) != 1 || string(got[0].Body) != "fine" {
		t.Fatalf("receive after the limit = %+v, %v; want the fine message", got, err)
	}
	dead, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != poisonID || string(dead[0].Body) != "poison" || dead[0].Receives != MaxReceives {
		t.Errorf("DeadLetters = %+v, want the poison message received %d times", dead, MaxReceives)
	}
}

func TestQueueSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, []byte("kept"), "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	got, err := s.Receive(ctx, 10, time.Hour)
	if err != nil || len(got) != 1 || string(got[0].Body) != "kept" {
		t.Errorf("after reopening: %v, %v; want the message", bodies(got), err)
	}
}

// TestQueueConcurrentReceivers: receivers racing never get the same
// message while it is hidden, and every message is handed out.
func TestQueueConcurrentReceivers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	const n = 40
	for i := range n {
		if err := s.Send(ctx, []byte(fmt.Sprint(i)), ""); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				got, err := s.Receive(ctx, 3, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d distinct messages received, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("message %s received %d times while hidden", id, c)
		}
	}
}
