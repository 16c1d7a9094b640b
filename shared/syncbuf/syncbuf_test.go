package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/kitefix/kitefix/shared/syncbuf"
)

// TestConcurrentWrites writes from several goroutines while reading: run
// with -race, it shows the lock covers both; every line written is kept.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	const writers, lines = 8, 100
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range lines {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Errorf("write: %v", err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got, want := strings.Count(b.String(), "line\n"), writers*lines; got != want {
		t.Errorf("%d lines kept, want %d", got, want)
	}
}
