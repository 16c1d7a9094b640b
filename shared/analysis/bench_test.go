package analysis_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
)

// generatedLog is a CI log of about size bytes: blocks of passing test
// output, then a failing test at the end. It is made as it is read, so the
// fake Buildkite streams it without holding it.
type generatedLog struct {
	left  int64
	block []byte
	buf   []byte
	tail  *strings.Reader
}

// passingBlock is 1 MiB of passing Go test output.
var passingBlock = func() []byte {
	var b []byte
	for n := 0; len(b) < 1<<20; n++ {
		b = fmt.Appendf(b, "_bk;t=%d=== RUN   TestCase%d\n--- PASS: TestCase%d (0.00s)\nok  \tgithub.com/acme/widgets/pkg%d\t0.0%02ds\n",
			1700000000000+n, n, n, n%977, n%97)
	}
	return b
}()

func newGeneratedLog(size int64) *generatedLog {
	return &generatedLog{left: size, block: passingBlock, tail: strings.NewReader(testLog)}
}

func (g *generatedLog) Read(p []byte) (int, error) {
	if len(g.buf) == 0 {
		if g.left <= 0 {
			return g.tail.Read(p)
		}
		g.buf = g.block
		g.left -= int64(len(g.buf))
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// peakRSS is the process's peak resident set (VmHWM) in bytes, or 0 where
// /proc does not say.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// heapSampler records the largest heap in use while it runs.
func heapSampler() (stop func() uint64) {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// BenchmarkAnalyzeHandler1GiB streams a 1 GiB raw log from the fake
// Buildkite through the analyze function's handler, given an SQS batch of
// one message (build read, log stream, analysis, stored record,
// annotation), and reports the time, the peak heap in use
// and the process's peak resident set.
func BenchmarkAnalyzeHandler1GiB(b *testing.B) {
	const size = 1 << 30
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := newEnv(b, allCaps, func(c *analysis.Config) { c.LogTimeout = 10 * time.Minute })
		handler := e.w.LambdaHandler(&fakeRedelivery{})
		id := fmt.Sprintf("big-%d", i)
		e.bk.AddBuild(analysistest.FailedBuild(testOrg, "web", 100+i, time.Now(), id))
		e.bk.SetLog(id, func() io.Reader { return newGeneratedLog(size) })
		runtime.GC()
		stop := heapSampler()
		ev, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{
			MessageId: id, ReceiptHandle: "rh", Body: string(body(b, jobMessage(100+i, id))), EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		}}})
		b.StartTimer()
		resp, err := handler(context.Background(), ev)
		b.StopTimer()
		peak := stop()
		if err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("batch: %v %v", resp, err)
		}
		rec, err := e.store.GetAnalysis(context.Background(), testTenant, "job:"+id)
		if err != nil || rec.State != analysis.StateAnalyzed || rec.Bytes < size {
			b.Fatalf("analysis %s, %d bytes (%v)", rec.State, rec.Bytes, err)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(rec.Bytes)/(1<<20)/(float64(rec.DurationMS)/1000), "MiB/s")
		b.ReportMetric(float64(rec.Requests), "requests/job")
		b.StartTimer()
	}
}
