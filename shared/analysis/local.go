package analysis

import (
	"context"
	"sync"
	"time"
)

// QueuedMessage is one message received from the durable local queue.
type QueuedMessage struct {
	ID       string
	Body     []byte
	Receives int
}

// LocalQueue is the durable queue of `kitefix serve`. A received message
// stays invisible for the visibility timeout, then is delivered again
// unless deleted; after its last receive the queue keeps it as a dead
// letter.
type LocalQueue interface {
	Receive(ctx context.Context, max int, visibility time.Duration) ([]QueuedMessage, error)
	Delete(ctx context.Context, id string) error
	ChangeVisibility(ctx context.Context, id string, delay time.Duration) error
}

// Pool settings of the local worker.
const (
	// DefaultConcurrency bounds the jobs analyzed at once: each holds a
	// log stream and the analyzer's bounded state.
	DefaultConcurrency = 4
	// localVisibility is how long a received message stays hidden; longer
	// than a job takes, so a crash returns it to the queue, not a slow job.
	localVisibility = 10 * time.Minute
	// localPoll is how often an idle pool looks at the queue when nothing
	// wakes it.
	localPoll = time.Second
	// DefaultShutdownGrace is how long shutdown waits for in-flight jobs
	// before it cancels them and returns their messages to the queue.
	DefaultShutdownGrace = 10 * time.Second
)

// Pool runs the Worker over a LocalQueue with bounded concurrency.
type Pool struct {
	w           *Worker
	q           LocalQueue
	concurrency int
	grace       time.Duration
	wake        chan struct{}
}

// NewPool returns a pool of at most concurrency jobs at once (≤ 0: the
// default) that waits grace for in-flight jobs on shutdown (≤ 0: the
// default).
func NewPool(w *Worker, q LocalQueue, concurrency int, grace time.Duration) *Pool {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	return &Pool{w: w, q: q, concurrency: concurrency, grace: grace, wake: make(chan struct{}, 1)}
}

// Wake tells the pool a message was queued, so it need not wait for its
// next poll.
func (p *Pool) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run receives and processes messages until ctx ends. Then it stops
// receiving, lets in-flight jobs finish for the grace period, cancels the
// rest and returns their messages to the queue (visible at once), so a
// restart resumes them.
func (p *Pool) Run(ctx context.Context) {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	slots := make(chan struct{}, p.concurrency)
	var wg sync.WaitGroup
	for ctx.Err() == nil {
		free := p.concurrency - len(slots)
		if free == 0 {
			select {
			case <-ctx.Done():
				continue
			case slots <- struct{}{}:
				<-slots // a slot freed; loop to count again
				continue
			}
		}
		msgs, err := p.q.Receive(ctx, free, localVisibility)
		if err != nil && ctx.Err() == nil {
			p.w.log.ErrorContext(ctx, "receive from the local queue", "err", err)
		}
		for _, m := range msgs {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				p.handle(work, m)
			}()
		}
		if len(msgs) == 0 {
			t := time.NewTimer(localPoll)
			select {
			case <-ctx.Done():
			case <-p.wake:
			case <-t.C:
			}
			t.Stop()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.grace):
		p.w.log.Warn("shutting down: in-flight jobs go back to the queue")
		cancelWork()
		<-done
	}
}

// handle processes one message and settles it with the queue.
func (p *Pool) handle(ctx context.Context, m QueuedMessage) {
	out := p.w.HandleBody(ctx, m.Body, m.Receives)
	settle := context.WithoutCancel(ctx)
	switch out.Verdict {
	case Done:
		if err := p.q.Delete(settle, m.ID); err != nil {
			p.w.log.Error("delete a processed message", "message_id", m.ID, "err", err)
		}
	default:
		delay := time.Duration(0)
		if out.Verdict == Later && ctx.Err() == nil {
			delay = out.Delay
		}
		if err := p.q.ChangeVisibility(settle, m.ID, delay); err != nil {
			p.w.log.Error("return a message to the queue", "message_id", m.ID, "err", err)
		}
	}
}
