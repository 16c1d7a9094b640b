package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/webhook"
)

// jobsPerToken keeps each server's jobs inside one token's 50 requests a
// minute (a job costs about three), so the benchmark measures latency,
// not the budget's wait.
const jobsPerToken = 12

// benchLog is a 10 MiB log: passing test output, then a failing test.
var benchLog = func() string {
	var b strings.Builder
	for n := 0; b.Len() < 10<<20; n++ {
		fmt.Fprintf(&b, "=== RUN   TestCase%d\n--- PASS: TestCase%d (0.00s)\nok  \tgithub.com/acme/widgets/pkg%d\t0.0%02ds\n", n, n, n%977, n%97)
	}
	return b.String() + unitLog
}()

// BenchmarkServeWebhookToAnnotation measures kitefix serve from a signed
// job.finished webhook for a job with a 10 MiB log to the annotation on the
// build, on loopback with a fake Buildkite; it reports p50 and p99.
func BenchmarkServeWebhookToAnnotation(b *testing.B) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
	)
	var srv struct {
		bk     *analysistest.Server
		hook   string
		secret string
		stop   func()
		jobs   int
	}
	posted := map[string]chan time.Time{}
	start := func(round int) {
		token := fmt.Sprintf("bkua_%040x", round+1)
		srv.bk = analysistest.New(b, token, analyzeOrg)
		srv.bk.OnAnnotation(func(a analysistest.Annotation) {
			mu.Lock()
			ch := posted[fmt.Sprint(a.Build)]
			mu.Unlock()
			if ch != nil {
				select {
				case ch <- time.Now():
				default:
				}
			}
		})
		url, _, stop := startServeWith(b, b.TempDir(), srv.bk.URL, "--reconcile-every", "0")
		req, _ := http.NewRequest("PUT", url+"/v1/integrations/buildkite", strings.NewReader(`{"token":"`+token+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("connect = %d (%v)", resp.StatusCode, err)
		}
		hook := body["webhook"].(map[string]any)
		srv.hook, srv.secret, srv.stop, srv.jobs = hook["url"].(string), hook["secret"].(string), stop, 0
	}
	round := 0
	start(round)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if srv.jobs == jobsPerToken {
			srv.stop()
			round++
			start(round)
		}
		srv.jobs++
		number := 1000 + i
		id := fmt.Sprintf("job-%d", i)
		build := analysistest.FailedBuild(analyzeOrg, "web", number, time.Now(), id)
		srv.bk.AddBuild(build)
		srv.bk.SetLogText(id, benchLog)
		ch := make(chan time.Time, 1)
		mu.Lock()
		posted[fmt.Sprint(number)] = ch
		mu.Unlock()
		payload := analysistest.JobFinished(analyzeOrg, build, id)
		req, _ := http.NewRequest("POST", srv.hook, bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Buildkite-Event", "job.finished")
		req.Header.Set("X-Buildkite-Signature", webhook.Sign(srv.secret, time.Now(), payload))
		b.StartTimer()
		sent := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("webhook = %d", resp.StatusCode)
		}
		select {
		case at := <-ch:
			latencies = append(latencies, at.Sub(sent))
		case <-time.After(time.Minute):
			b.Fatalf("no annotation for build %d within a minute", number)
		}
	}
	b.StopTimer()
	srv.stop()
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(latencies)), "samples")
}
