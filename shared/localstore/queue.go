package localstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kitefix/kitefix/shared/storage"
)

// MaxReceives is how often a message may be received before the next
// Receive moves it to the dead letters: the redrive limit of the analyze
// queue on AWS, so both stacks give up on a poison message alike.
const MaxReceives = 5

var (
	// bucketQueue: sequence number (big-endian) → queuedMessage, so a
	// cursor walks the oldest first.
	bucketQueue = []byte("queue")
	// bucketDeadLetters holds the messages received MaxReceives times.
	bucketDeadLetters = []byte("queue_dead_letters")
	// bucketQueueDedupe: dedupe id → sequence number of the waiting message.
	bucketQueueDedupe = []byte("queue_dedupe")
)

// QueuedMessage is a message of the local queue as Receive and DeadLetters
// return it.
type QueuedMessage struct {
	ID       string
	Body     []byte
	Receives int
	SentAt   time.Time
}

// queuedMessage is a message as stored.
type queuedMessage struct {
	Body      []byte    `json:"body"`
	DedupeID  string    `json:"dedupe_id,omitempty"`
	Receives  int       `json:"receives"`
	SentAt    time.Time `json:"sent_at"`
	VisibleAt time.Time `json:"visible_at"`
	// InFlight: received and hidden for its visibility timeout, neither
	// deleted nor given a delay since.
	InFlight bool `json:"in_flight,omitempty"`
}

func messageID(seq []byte) string {
	return fmt.Sprintf("%016x", binary.BigEndian.Uint64(seq))
}

func messageKey(id string) ([]byte, bool) {
	n, err := strconv.ParseUint(id, 16, 64)
	if err != nil || len(id) != 16 {
		return nil, false
	}
	return binary.BigEndian.AppendUint64(nil, n), true
}

func (m queuedMessage) public(key []byte) QueuedMessage {
	return QueuedMessage{ID: messageID(key), Body: m.Body, Receives: m.Receives, SentAt: m.SentAt}
}

func queueBuckets(tx *bolt.Tx) (q, dead, dedupe *bolt.Bucket, err error) {
	if q, err = tx.CreateBucketIfNotExists(bucketQueue); err != nil {
		return
	}
	if dead, err = tx.CreateBucketIfNotExists(bucketDeadLetters); err != nil {
		return
	}
	dedupe, err = tx.CreateBucketIfNotExists(bucketQueueDedupe)
	return
}

// Send adds body to the queue, durably: when Send returns, the message
// survives a crash. While a message with the same non-empty dedupeID waits
// in the queue, sending again does nothing.
func (s *Store) Send(ctx context.Context, body []byte, dedupeID string) error {
	if len(body) == 0 {
		return fmt.Errorf("send message %s: empty body", dedupeID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send message %s: %w: %w", dedupeID, storage.ErrUnavailable, err)
	}
	now := time.Now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		q, _, dedupe, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		if dedupeID != "" {
			if k := dedupe.Get([]byte(dedupeID)); k != nil && q.Get(k) != nil {
				return nil
			}
		}
		seq, err := q.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(queuedMessage{Body: body, DedupeID: dedupeID, SentAt: now, VisibleAt: now})
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64(nil, seq)
		if err := q.Put(key, v); err != nil {
			return err
		}
		if dedupeID != "" {
			return dedupe.Put([]byte(dedupeID), key)
		}
		return nil
	})
	if err != nil {
		return wrap("send message "+dedupeID, err)
	}
	return nil
}

// Receive returns up to max visible messages, oldest first, counts the
// receive and hides each for visibility (Delete it when done, or it comes
// back). A message already received MaxReceives times goes to the dead
// letters instead.
func (s *Store) Receive(ctx context.Context, max int, visibility time.Duration) ([]QueuedMessage, error) {
	if max <= 0 {
		return nil, fmt.Errorf("receive messages: max %d: want at least 1", max)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("receive messages: %w: %w", storage.ErrUnavailable, err)
	}
	now := time.Now().UTC()
	var out []QueuedMessage
	err := s.db.Update(func(tx *bolt.Tx) error {
		out = out[:0]
		q, dead, dedupe, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		type change struct {
			key  []byte
			msg  queuedMessage
			dead bool
		}
		var changes []change
		c := q.Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			var m queuedMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode message %s: %w", messageID(k), err)
			}
			if m.VisibleAt.After(now) {
				continue
			}
			key := append([]byte(nil), k...)
			if m.Receives >= MaxReceives {
				changes = append(changes, change{key: key, msg: m, dead: true})
				continue
			}
			m.Receives++
			m.VisibleAt = now.Add(visibility)
			m.InFlight = true
			changes = append(changes, change{key: key, msg: m})
			out = append(out, m.public(key))
		}
		// Write after the walk: a bucket changed under a cursor moves it.
		for _, ch := range changes {
			v, err := json.Marshal(ch.msg)
			if err != nil {
				return err
			}
			if !ch.dead {
				if err := q.Put(ch.key, v); err != nil {
					return err
				}
				continue
			}
			if err := q.Delete(ch.key); err != nil {
				return err
			}
			if err := dead.Put(ch.key, v); err != nil {
				return err
			}
			if ch.msg.DedupeID != "" {
				if err := dedupe.Delete([]byte(ch.msg.DedupeID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("receive messages", err)
	}
	return out, nil
}

// Delete removes a message from the queue once it has been handled; a
// message already gone is fine.
func (s *Store) Delete(ctx context.Context, id string) error {
	key, ok := messageKey(id)
	if !ok {
		return fmt.Errorf("delete message %q: not a message id", id)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete message %s: %w: %w", id, storage.ErrUnavailable, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		q, _, dedupe, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		v := q.Get(key)
		if v == nil {
			return nil
		}
		var m queuedMessage
		if err := json.Unmarshal(v, &m); err == nil && m.DedupeID != "" {
			if err := dedupe.Delete([]byte(m.DedupeID)); err != nil {
				return err
			}
		}
		return q.Delete(key)
	})
	if err != nil {
		return wrap("delete message "+id, err)
	}
	return nil
}

// ChangeVisibility makes a message visible again after delay (0: at once),
// as SQS's ChangeMessageVisibility does. A message not in the queue is
// storage.ErrNotFound.
func (s *Store) ChangeVisibility(ctx context.Context, id string, delay time.Duration) error {
	key, ok := messageKey(id)
	if !ok {
		return fmt.Errorf("change visibility of message %q: not a message id", id)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("change visibility of message %s: %w: %w", id, storage.ErrUnavailable, err)
	}
	if delay < 0 {
		delay = 0
	}
	at := time.Now().UTC().Add(delay)
	err := s.db.Update(func(tx *bolt.Tx) error {
		q, _, _, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		v := q.Get(key)
		if v == nil {
			return storage.ErrNotFound
		}
		var m queuedMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode message %s: %w", id, err)
		}
		m.VisibleAt, m.InFlight = at, false
		nv, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return q.Put(key, nv)
	})
	if err != nil {
		return wrap("change visibility of message "+id, err)
	}
	return nil
}

// ReturnInFlight makes every message that is hidden only because it was
// received visible at once, and returns how many there were. One process
// at a time opens the store, so when it starts nothing is really in
// flight: such a message was being processed when the last process died,
// and without this it would wait out its whole visibility timeout. A
// message given a delay (a rate limit, a backoff) keeps it; the receive
// count stays, so a message that kills the process each time still ends
// in the dead letters.
func (s *Store) ReturnInFlight(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("return in-flight messages: %w: %w", storage.ErrUnavailable, err)
	}
	now := time.Now().UTC()
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		q, _, _, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		type change struct {
			key []byte
			val []byte
		}
		var changes []change
		err = q.ForEach(func(k, v []byte) error {
			var m queuedMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode message %s: %w", messageID(k), err)
			}
			if !m.InFlight {
				return nil
			}
			m.InFlight, m.VisibleAt = false, now
			nv, err := json.Marshal(m)
			if err != nil {
				return err
			}
			changes = append(changes, change{key: append([]byte(nil), k...), val: nv})
			return nil
		})
		if err != nil {
			return err
		}
		// Write after the walk: a bucket changed under a cursor moves it.
		for _, c := range changes {
			if err := q.Put(c.key, c.val); err != nil {
				return err
			}
		}
		n = len(changes)
		return nil
	})
	if err != nil {
		return 0, wrap("return in-flight messages", err)
	}
	return n, nil
}

// DeadLetters returns the messages given up on, oldest first.
func (s *Store) DeadLetters(ctx context.Context) ([]QueuedMessage, error) {
	return s.listMessages(ctx, bucketDeadLetters, "list dead letters")
}

// Pending returns every message in the queue, visible or not (received
// and not yet deleted), oldest first: what a restart would resume.
func (s *Store) Pending(ctx context.Context) ([]QueuedMessage, error) {
	return s.listMessages(ctx, bucketQueue, "list pending messages")
}

// listMessages returns every message in bucket, oldest first; what names
// the operation in errors.
func (s *Store) listMessages(ctx context.Context, bucket []byte, what string) ([]QueuedMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, storage.ErrUnavailable, err)
	}
	var out []QueuedMessage
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var m queuedMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode message %s: %w", messageID(k), err)
			}
			out = append(out, m.public(k))
			return nil
		})
	})
	if err != nil {
		return nil, wrap(what, err)
	}
	return out, nil
}
