package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/sqsqueue"
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

func newRateLimitedBuildkite(b testing.TB, target string, clock *fakeClock, limit int) *rateLimitedBuildkite {
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

// BenchmarkBudgetBurst500 runs runBudgetBurst with 500 failed jobs and
// reports Buildkite requests per job, 429s received, the simulated
// minutes until the queue was empty, the most receives any message had
// (the queue's redrive moves a message past 5 to the dead-letter queue)
// and the most times a message was sent again for the budget.
func BenchmarkBudgetBurst500(b *testing.B) {
	const jobs = 500
	for range b.N {
		f := runBudgetBurst(b, jobs)
		b.ReportMetric(float64(f.requests)/float64(jobs), "requests/job")
		b.ReportMetric(float64(f.limited), "429s")
		b.ReportMetric(f.simMinutes, "sim-minutes")
		b.ReportMetric(float64(f.maxReceives), "max-receives")
		b.ReportMetric(float64(f.maxDeferrals), "max-deferrals")
		b.ReportMetric(float64(f.deadLettered), "dead-lettered")
	}
}

// TestBudgetBurst is runBudgetBurst with fewer jobs, for its invariants.
func TestBudgetBurst(t *testing.T) {
	const jobs = 60
	f := runBudgetBurst(t, jobs)
	t.Logf("%d jobs: %.2f requests/job, %d 429s, %.0f simulated minutes, at most %d receives and %d deferrals of a message",
		jobs, float64(f.requests)/float64(jobs), f.limited, f.simMinutes, f.maxReceives, f.maxDeferrals)
}

// burstFigures are what runBudgetBurst measured.
type burstFigures struct {
	requests, limited         int
	simMinutes                float64
	maxReceives, maxDeferrals int
	deadLettered              int
}

// burstTimeScale is how much faster than real time the burst's clock
// runs: a budget minute passes in two real seconds, and SQS delays and
// visibility timeouts (whole seconds on kumo) are divided by it.
const burstTimeScale = 30

// runBudgetBurst queues a burst of failed jobs of one token on a kumo
// queue whose redrive moves a message received more than
// redriveReceives times to a dead-letter queue, and lets two analyze
// function instances, each with its own DynamoDB client, work through it
// over the budget they share on kumo (50 requests a minute), as Lambda's
// SQS poller would: batches of five, the partial batch response deleting
// what is done. A Buildkite that answers 429 past 50 requests a minute
// checks the budget holds.
//
// The workers' clock starts an hour ahead and runs burstTimeScale times
// faster than real time; the functions' SQS calls divide their delays by
// the same factor. Every wait for the budget is longer than the
// invocation's time left, so each one ends the message's invocation: the
// worst case, an invocation near its end.
//
// It fails unless every job ends analyzed, no message was received more
// than redriveReceives times, and the dead-letter queue stays empty.
func runBudgetBurst(tb testing.TB, jobs int) burstFigures {
	tb.Helper()
	ctx := context.Background()
	k := startKumo(tb)
	e := newAnalyzeEnv(tb, k)
	queueURL, dlqURL := createRedriveQueue(tb, k)
	clock := &fakeClock{}
	realStart := time.Now()
	simStart := realStart.Add(time.Hour).Truncate(time.Minute)
	clock.ns.Store(simStart.UnixNano())
	stopClock := make(chan struct{})
	clockDone := make(chan struct{})
	go func() {
		defer close(clockDone)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopClock:
				return
			case <-tick.C:
				clock.advanceTo(simStart.Add(time.Since(realStart) * burstTimeScale))
			}
		}
	}()
	defer func() { close(stopClock); <-clockDone }()
	front := newRateLimitedBuildkite(tb, e.bk.URL, clock, analysis.RequestsPerMinute)

	const perBuild = 5
	var bodies []sqsqueue.Message
	for n := 1; n <= jobs/perBuild; n++ {
		var ids []string
		for j := range perBuild {
			ids = append(ids, fmt.Sprintf("burst-%d-%d", n, j))
		}
		e.bk.AddBuild(analysistest.FailedBuild(analyzeOrg, "web", 100+n, time.Now(), ids...))
		for _, id := range ids {
			e.bk.SetLogText(id, unitTestLog)
			b, err := queue.Encode(e.jobMessage(100+n, id))
			if err != nil {
				tb.Fatal(err)
			}
			bodies = append(bodies, sqsqueue.Message{Body: b, DedupeID: id})
		}
	}
	if err := sqsqueue.New(k.SQS, queueURL).SendBatch(ctx, bodies); err != nil {
		tb.Fatalf("queue the burst: %v", err)
	}

	cfg := config.Config{BuildkiteAPIURL: front.URL, AutoRetry: true}
	log := slog.New(slog.DiscardHandler)
	var (
		mu           sync.Mutex
		receives     = map[string]int{}
		maxDeferrals int
	)
	var wg sync.WaitGroup
	deadline := time.Now().Add(10 * time.Minute)
	for range 2 {
		ddb := newKumoDynamoDB(k.Config, k.URL)
		client := newKumoSQS(k.Config, k.URL)
		w := analysis.New(analysis.Config{
			Connections: kumoConnections{k: k, prefix: e.prefix},
			Store:       dynamostore.NewAnalyses(ddb, k.Table),
			Budget:      dynamostore.NewBudget(ddb, k.Table),
			Deliveries:  dynamostore.New(ddb, k.Table),
			Buildkite:   stack.AnalyzeClients(cfg, log),
			AutoRetry:   true,
			Logger:      log,
			Now:         clock.now,
		})
		handler := w.LambdaHandler(sqsqueue.NewRedelivery(scaledSQS{client}, queueURL))
		wg.Go(func() {
			for time.Now().Before(deadline) {
				out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(queueURL), MaxNumberOfMessages: burstBatchSize,
					MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
					MessageAttributeNames:       allMessageAttributes,
				})
				if err != nil {
					tb.Errorf("receive: %v", err)
					return
				}
				if len(out.Messages) == 0 {
					if visible, delayed, inFlight := queueCounts(tb, client, queueURL); visible+delayed+inFlight == 0 {
						return
					}
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var ev events.SQSEvent
				mu.Lock()
				for _, m := range out.Messages {
					rec := events.SQSMessage{
						MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
						Attributes: m.Attributes, MessageAttributes: lambdaAttributes(m), EventSource: "aws:sqs", AWSRegion: kumoRegion,
					}
					n, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
					receives[rec.MessageId] = max(receives[rec.MessageId], n)
					maxDeferrals = max(maxDeferrals, deferralsOf(rec))
					ev.Records = append(ev.Records, rec)
				}
				mu.Unlock()
				payload, err := json.Marshal(ev)
				if err != nil {
					tb.Error(err)
					return
				}
				invCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				resp, err := handler(invCtx, payload)
				cancel()
				if err != nil {
					tb.Errorf("invocation: %v", err)
					return
				}
				failed := map[string]bool{}
				for _, f := range resp.BatchItemFailures {
					failed[f.ItemIdentifier] = true
				}
				for _, m := range ev.Records {
					if failed[m.MessageId] {
						continue
					}
					if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(m.ReceiptHandle)}); err != nil {
						tb.Errorf("delete message: %v", err)
						return
					}
				}
			}
			tb.Errorf("the queue still held messages after 10 minutes")
		})
	}
	wg.Wait()

	f := burstFigures{simMinutes: clock.now().Sub(simStart).Minutes(), maxDeferrals: max(maxDeferrals, 0)}
	for _, n := range receives {
		f.maxReceives = max(f.maxReceives, n)
	}
	front.mu.Lock()
	f.requests, f.limited = front.requests, front.limited
	front.mu.Unlock()
	visible, delayed, inFlight := queueCounts(tb, k.SQS, dlqURL)
	f.deadLettered = visible + delayed + inFlight

	analyzed := 0
	cursor := ""
	for {
		page, next, err := e.store.ListAnalyses(ctx, e.tenant, 100, cursor)
		if err != nil {
			tb.Fatalf("list analyses: %v", err)
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
		tb.Errorf("%d of %d jobs analyzed", analyzed, jobs)
	}
	if f.maxReceives > redriveReceives {
		tb.Errorf("a message was received %d times; the queue's redrive allows %d", f.maxReceives, redriveReceives)
	}
	if f.deadLettered != 0 {
		tb.Errorf("%d messages dead-lettered", f.deadLettered)
	}
	return f
}

// burstBatchSize is the analyze function's SQS batch size in the
// template.
const burstBatchSize = 5

// createRedriveQueue makes an analyze queue whose redrive moves a message
// received more than redriveReceives times to a dead-letter queue, and
// returns both URLs. Its visibility timeout (30 s) outlasts any batch.
func createRedriveQueue(tb testing.TB, k *kumoEnv) (queueURL, dlqURL string) {
	tb.Helper()
	return makeRedriveQueues(tb, k, "kitefix-burst", 30*time.Second)
}

// scaledSQS is an SQS client whose delays and visibility timeouts pass
// burstTimeScale times faster, as the burst's clock does.
type scaledSQS struct{ *sqs.Client }

var _ sqsqueue.RedeliveryAPI = scaledSQS{}

func (c scaledSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	scaled := *in
	scaled.DelaySeconds = scaleSeconds(in.DelaySeconds)
	return c.Client.SendMessage(ctx, &scaled, optFns...)
}

func (c scaledSQS) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	scaled := *in
	scaled.VisibilityTimeout = scaleSeconds(in.VisibilityTimeout)
	return c.Client.ChangeMessageVisibility(ctx, &scaled, optFns...)
}

// scaleSeconds is s simulated seconds in real ones, rounded up: a wait
// stays a wait.
func scaleSeconds(s int32) int32 { return (s + burstTimeScale - 1) / burstTimeScale }
