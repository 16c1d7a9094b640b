package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/stack"
)

// fakeClock is the analyze workers' clock: it starts an hour ahead of the
// real one (so a request budget spent until the next minute is always
// past a call's real deadline, and the worker sends the message back at
// once instead of sleeping) and moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time { return time.Unix(0, c.ns.Load()) }

func (c *fakeClock) advanceTo(t time.Time) {
	if t.UnixNano() > c.ns.Load() {
		c.ns.Store(t.UnixNano())
	}
}

// rateLimitedBuildkite stands in front of the fake and answers 429, as
// Buildkite would, to any request beyond limit in one minute of clock.
type rateLimitedBuildkite struct {
	*httptest.Server
	clock    *fakeClock
	limit    int
	mu       sync.Mutex
	window   time.Time
	count    int
	limited  int
	requests int
}

func newRateLimitedBuildkite(b *testing.B, target string, clock *fakeClock, limit int) *rateLimitedBuildkite {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	r := &rateLimitedBuildkite{clock: clock, limit: limit}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := clock.now()
		window := now.Truncate(time.Minute)
		r.mu.Lock()
		if !window.Equal(r.window) {
			r.window, r.count = window, 0
		}
		r.count++
		r.requests++
		over := r.count > r.limit
		if over {
			r.limited++
		}
		r.mu.Unlock()
		if over {
			w.Header().Set("RateLimit-Reset", fmt.Sprint(int(window.Add(time.Minute).Sub(now).Seconds())+1))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"message":"You have exceeded your API rate limit."}`)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	b.Cleanup(r.Close)
	return r
}

// BenchmarkBudgetBurst500 queues a burst of 500 failed jobs of one token
// and lets two analyze function instances, each with its own DynamoDB
// client, work through them over the budget they share on kumo (50
// requests a minute), with a clock that jumps to the next message's
// visibility when nothing is visible, as time would pass. A Buildkite that
// answers 429 past 50 requests a minute checks the budget holds. It
// reports Buildkite requests per job, 429s received, the simulated minutes
// until the last analysis, the most receives any message needed and how
// many jobs needed more receives than the queue's redrive allows (5):
// those the real queue would have moved to the dead-letter queue.
//
// The clock makes every wait for the budget longer than the invocation's
// time left, so each one sends its message back to the queue: the worst
// case, an invocation near its end. With the function's 300-second
// timeout a wait of under a minute is often sat out inside the
// invocation instead, and messages are received less often.
func BenchmarkBudgetBurst500(b *testing.B) {
	const jobs = 500
	for range b.N {
		benchBudgetBurst(b, jobs)
	}
}

type pendingMessage struct {
	m         queue.Message
	receives  int
	visibleAt time.Time
}

func benchBudgetBurst(b *testing.B, jobs int) {
	k := startKumo(b)
	e := newAnalyzeEnv(b, k)
	clock := &fakeClock{}
	clock.ns.Store(time.Now().Add(time.Hour).Truncate(time.Minute).UnixNano())
	front := newRateLimitedBuildkite(b, e.bk.URL, clock, analysis.RequestsPerMinute)

	var msgs []*pendingMessage
	const perBuild = 5
	for n := 1; n <= jobs/perBuild; n++ {
		var ids []string
		for j := range perBuild {
			ids = append(ids, fmt.Sprintf("burst-%d-%d", n, j))
		}
		e.bk.AddBuild(analysistest.FailedBuild(analyzeOrg, "web", 100+n, time.Now(), ids...))
		for _, id := range ids {
			e.bk.SetLogText(id, unitTestLog)
			msgs = append(msgs, &pendingMessage{m: e.jobMessage(100+n, id), visibleAt: clock.now()})
		}
	}
	cfg := config.Config{BuildkiteAPIURL: front.URL, AutoRetry: true}
	log := slog.New(slog.DiscardHandler)
	workers := make([]*analysis.Worker, 2)
	for i := range workers {
		ddb := newKumoDynamoDB(k.Config, k.URL)
		workers[i] = analysis.New(analysis.Config{
			Connections: kumoConnections{k: k, prefix: e.prefix},
			Store:       dynamostore.NewAnalyses(ddb, k.Table),
			Budget:      dynamostore.NewBudget(ddb, k.Table),
			Deliveries:  dynamostore.New(ddb, k.Table),
			Buildkite:   stack.AnalyzeClients(cfg, log),
			AutoRetry:   true,
			Logger:      log,
			Now:         clock.now,
		})
	}
	start := clock.now()
	maxReceives, done, overRedrive := 0, 0, 0
	b.ResetTimer()
	for pass := 0; done < jobs; pass++ {
		if pass > 10*jobs {
			b.Fatalf("%d of %d jobs done after %d passes", done, jobs, pass)
		}
		now := clock.now()
		var visible []*pendingMessage
		next := time.Time{}
		for _, p := range msgs {
			if p == nil {
				continue
			}
			if !p.visibleAt.After(now) {
				visible = append(visible, p)
			} else if next.IsZero() || p.visibleAt.Before(next) {
				next = p.visibleAt
			}
		}
		if len(visible) == 0 {
			clock.advanceTo(next)
			continue
		}
		// Ten messages per batch, as the SQS event source delivers them,
		// one batch per instance at a time.
		if len(visible) > 20 {
			visible = visible[:20]
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i, p := range visible {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				out := workers[i/10].Process(ctx, p.m, p.receives+1)
				mu.Lock()
				defer mu.Unlock()
				p.receives++
				maxReceives = max(maxReceives, p.receives)
				if p.receives == redriveReceives+1 {
					overRedrive++
				}
				switch out.Verdict {
				case analysis.Done:
					p.visibleAt = time.Time{}
				case analysis.Later:
					p.visibleAt = clock.now().Add(out.Delay)
				default:
					b.Errorf("job %s: poison: %v", p.m.JobID, out.Err)
				}
			})
		}
		wg.Wait()
		for i, p := range msgs {
			if p != nil && p.visibleAt.IsZero() {
				msgs[i] = nil
				done++
			}
		}
	}
	b.StopTimer()
	list, _, err := e.store.ListAnalyses(context.Background(), e.tenant, 100, "")
	if err != nil || len(list) == 0 {
		b.Fatalf("list analyses: %d %v", len(list), err)
	}
	analyzed := 0
	cursor := ""
	for {
		page, next, err := e.store.ListAnalyses(context.Background(), e.tenant, 100, cursor)
		if err != nil {
			b.Fatal(err)
		}
		for _, rec := range page {
			if rec.State == analysis.StateAnalyzed {
				analyzed++
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if analyzed != jobs {
		b.Errorf("%d of %d jobs analyzed", analyzed, jobs)
	}
	front.mu.Lock()
	requests, limited := front.requests, front.limited
	front.mu.Unlock()
	b.ReportMetric(float64(requests)/float64(jobs), "requests/job")
	b.ReportMetric(float64(limited), "429s")
	b.ReportMetric(clock.now().Sub(start).Minutes(), "sim-minutes")
	b.ReportMetric(float64(maxReceives), "max-receives")
	b.ReportMetric(float64(overRedrive), "jobs-past-redrive")
}

// redriveReceives is the analyze queue's maxReceiveCount in the template:
// a message received more often than this goes to the dead-letter queue
// (the local queue of kitefix serve does the same).
const redriveReceives = 5
