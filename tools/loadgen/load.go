package main

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kitefix/kitefix/shared/buildkite"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/webhook"
)

// Config is one load run.
type Config struct {
	// Binary is the kitefix binary to run as `kitefix serve`.
	Binary string
	// Deliveries in all, over Builds builds; FailedBuilds of them fail, each
	// with one failed job (its other jobs pass).
	Deliveries, Builds, FailedBuilds int
	// Shares of the deliveries that are exact duplicates, carry a bad
	// signature, or name an unknown webhook id (percent).
	DuplicatePct, BadSignaturePct, UnknownIDPct int
	// Concurrency is how many deliveries are in flight at once.
	Concurrency int
	// Timeout bounds the whole run.
	Timeout time.Duration
	Seed    uint64
	// Log receives progress lines.
	Log io.Writer
}

// Report is what a run measured.
type Report struct {
	Deliveries       int
	ByStatus         map[int]int
	Send             time.Duration
	PerSecond        float64
	P50, P99, Max    time.Duration
	FailedJobs       int
	UntilLastAnalyze time.Duration
	Requests         int
	RequestsPerJob   float64
	PeakRSSKiB       int64
}

func (r Report) String() string {
	return fmt.Sprintf("deliveries %d in %s: %.0f/s; webhook latency p50 %s p99 %s max %s; statuses %v\n"+
		"failed jobs %d, each analyzed once; last analysis %s after the first delivery; Buildkite requests %d (%.1f per job)\n"+
		"kitefix serve peak RSS %.1f MiB",
		r.Deliveries, r.Send.Round(time.Millisecond), r.PerSecond, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond),
		r.Max.Round(10*time.Microsecond), r.ByStatus, r.FailedJobs, r.UntilLastAnalyze.Round(time.Millisecond), r.Requests,
		r.RequestsPerJob, float64(r.PeakRSSKiB)/1024)
}

// delivery is one request to send and the statuses that are right for it.
type delivery struct {
	hookID    string
	event     string
	signature string
	body      []byte
	want      []int
	kind      string // "valid", "duplicate", "bad signature", "unknown id"
	// unique numbers the valid delivery a duplicate copies; queues says
	// the delivery names work to queue: exactly one copy of a failed
	// build's, at most one of a failed job's (its build may claim it
	// first), is answered 202.
	unique int
	queues string // "", "build", "job"
}

const (
	org      = "loadorg"
	pipeline = "app"
	token    = "bkua_10ad10ad10ad10ad10ad10ad10ad10ad10ad10ad"
)

// failedLog is what each failed job printed.
const failedLog = "~~~ Running tests\n$ go test ./...\n=== RUN   TestCheckout\n    checkout_test.go:42: checkout: got status 500, want 201\n--- FAIL: TestCheckout (0.03s)\nFAIL\n🚨 Error: The command exited with status 1\n"

// Run starts a fake Buildkite and `kitefix serve`, connects them, sends
// the deliveries and checks the invariants: every bad delivery refused,
// every failed job analyzed exactly once, nothing left in the queue.
func Run(ctx context.Context, cfg Config) (Report, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	bk := newFakeBuildkite(token, org)
	defer bk.Close()

	dir, err := os.MkdirTemp("", "kitefix-load")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(dir)
	dataDir := filepath.Join(dir, "data")
	srv, err := startServe(ctx, cfg.Binary, dataDir, bk.URL)
	if err != nil {
		return Report{}, err
	}
	defer srv.stop()

	hookID, secret, err := connect(ctx, srv.url)
	if err != nil {
		return Report{}, err
	}
	plan, failedJobs := makePlan(cfg, rng, bk, hookID, secret)
	fmt.Fprintf(cfg.Log, "sending %d deliveries (%d failed jobs in %d builds) with %d at once\n", len(plan), len(failedJobs), cfg.Builds, cfg.Concurrency)

	rep := Report{Deliveries: len(plan), ByStatus: map[int]int{}, FailedJobs: len(failedJobs)}
	start := time.Now()
	latencies, statuses, err := send(ctx, srv.url, plan, cfg.Concurrency)
	rep.Send = time.Since(start)
	if err != nil {
		return rep, err
	}
	rep.PerSecond = float64(len(plan)) / rep.Send.Seconds()
	slices.Sort(latencies)
	rep.P50, rep.P99, rep.Max = latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1]
	var problems []string
	for i, d := range plan {
		rep.ByStatus[statuses[i]]++
		if !slices.Contains(d.want, statuses[i]) {
			problems = append(problems, fmt.Sprintf("%s %s delivery answered %d, want one of %v", d.kind, d.event, statuses[i], d.want))
		}
	}
	queued := map[int]int{}
	for i, d := range plan {
		if d.queues != "" && statuses[i] == http.StatusAccepted {
			queued[d.unique]++
		}
	}
	for _, d := range plan {
		if d.kind != "valid" {
			continue
		}
		switch n := queued[d.unique]; {
		case d.queues == "build" && n != 1:
			problems = append(problems, fmt.Sprintf("a failed build's delivery queued %d times; want once", n))
		case d.queues == "job" && n > 1:
			problems = append(problems, fmt.Sprintf("a failed job's delivery queued %d times; want at most once", n))
		}
	}
	if len(problems) > 0 {
		return rep, fmt.Errorf("%d deliveries answered wrongly; first: %s", len(problems), problems[0])
	}

	analyzed, err := waitAnalyses(ctx, srv.url, len(failedJobs))
	rep.UntilLastAnalyze = time.Since(start)
	if err != nil {
		return rep, err
	}
	if err := checkAnalyses(analyzed, failedJobs); err != nil {
		return rep, err
	}
	// Let the last reports and build expansions finish, then stop the
	// server gracefully.
	if err := waitAnnotations(ctx, bk, cfg.FailedBuilds); err != nil {
		return rep, err
	}
	if err := waitQuiet(ctx, bk, quietPeriod); err != nil {
		return rep, err
	}
	rss, err := srv.stop()
	if err != nil {
		return rep, err
	}
	rep.PeakRSSKiB = rss
	requests, unexpected, logReads, _ := bk.counts()
	const connectRequests = 2 // the token and its organizations
	rep.Requests = requests - connectRequests
	rep.RequestsPerJob = float64(rep.Requests) / float64(max(len(failedJobs), 1))
	if len(unexpected) > 0 {
		return rep, fmt.Errorf("unexpected Buildkite requests: %v", unexpected)
	}
	for _, id := range failedJobs {
		if logReads[id] != 1 {
			return rep, fmt.Errorf("the log of failed job %s was read %d times; want once", id, logReads[id])
		}
	}
	if len(logReads) != len(failedJobs) {
		return rep, fmt.Errorf("%d logs read; want the %d failed jobs' only", len(logReads), len(failedJobs))
	}
	return rep, checkQueueEmpty(ctx, dataDir)
}

// makePlan builds the fake's builds and the deliveries, shuffled, so
// job.finished comes before build.finished and after it. It returns the
// ids of the failed jobs.
func makePlan(cfg Config, rng *rand.Rand, bk *fakeBuildkite, hookID, secret string) ([]delivery, []string) {
	dups := cfg.Deliveries * cfg.DuplicatePct / 100
	bad := cfg.Deliveries * cfg.BadSignaturePct / 100
	unknown := cfg.Deliveries * cfg.UnknownIDPct / 100
	valid := cfg.Deliveries - dups - bad - unknown
	// Each build sends one job.finished per job and one build.finished.
	jobsPerBuild := max(valid/cfg.Builds-1, 1)
	failedEvery := max(cfg.Builds/max(cfg.FailedBuilds, 1), 1)
	now := time.Now()

	var plan []delivery
	var failedJobs []string
	for n := 1; n <= cfg.Builds; n++ {
		failed := cfg.FailedBuilds > 0 && n%failedEvery == 0 && len(failedJobs) < cfg.FailedBuilds
		b := &buildkite.Build{
			ID: fmt.Sprintf("0199%04x-0000-4000-8000-%012x", n, n), Number: n, State: "passed",
			Branch: "main", Commit: fmt.Sprintf("%040x", n),
			URL:        fmt.Sprintf("https://api.buildkite.com/v2/organizations/%s/pipelines/%s/builds/%d", org, pipeline, n),
			WebURL:     fmt.Sprintf("https://buildkite.com/%s/%s/builds/%d", org, pipeline, n),
			Pipeline:   buildkite.Pipeline{Slug: pipeline, Name: pipeline, URL: fmt.Sprintf("https://api.buildkite.com/v2/organizations/%s/pipelines/%s", org, pipeline)},
			FinishedAt: &now,
		}
		for k := 1; k <= jobsPerBuild; k++ {
			zero, one := 0, 1
			j := buildkite.Job{ID: fmt.Sprintf("%s-job-%03d", b.ID, k), Type: "script", Name: fmt.Sprintf("step %d", k),
				StepKey: fmt.Sprintf("step-%d", k), State: "passed", ExitStatus: &zero, WebURL: b.WebURL + "#" + strconvI(k), FinishedAt: &now}
			if failed && k == 1 {
				j.State, j.ExitStatus = "failed", &one
				failedJobs = append(failedJobs, j.ID)
				bk.setLog(j.ID, failedLog)
			}
			b.Jobs = append(b.Jobs, j)
		}
		if failed {
			b.State = "failed"
		}
		bk.addBuild(b)
		for _, j := range b.Jobs {
			d := signed(hookID, secret, "job.finished", jobFinished(b, j), []int{http.StatusOK}, now)
			if j.State == "failed" {
				d.queues = "job"
			}
			plan = append(plan, d)
		}
		d := signed(hookID, secret, "build.finished", buildFinished(b), []int{http.StatusOK}, now)
		if failed {
			d.queues = "build"
		}
		plan = append(plan, d)
	}
	unique := len(plan)
	for i := range plan {
		plan[i].unique = i
		if plan[i].queues != "" {
			// The copy sent first queues; the others are duplicates.
			plan[i].want = []int{http.StatusAccepted, http.StatusOK}
		}
	}
	for range dups {
		d := plan[rng.IntN(unique)]
		d.kind = "duplicate"
		plan = append(plan, d)
	}
	for i := range bad {
		d := plan[rng.IntN(unique)]
		d.kind, d.want, d.queues = "bad signature", []int{http.StatusUnauthorized}, ""
		if i%2 == 0 {
			d.signature = webhook.Sign("not-the-secret", now, d.body)
		} else {
			d.body = append(bytes.Clone(d.body[:len(d.body)-1]), ' ', '}')
		}
		plan = append(plan, d)
	}
	for range unknown {
		d := plan[rng.IntN(unique)]
		d.kind, d.want, d.queues = "unknown id", []int{http.StatusUnauthorized}, ""
		d.hookID = randomHex(16)
		plan = append(plan, d)
	}
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	return plan, failedJobs
}

func strconvI(i int) string { return fmt.Sprint(i) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

func signed(hookID, secret, event string, body []byte, want []int, now time.Time) delivery {
	return delivery{hookID: hookID, event: event, body: body, want: want, kind: "valid", signature: webhook.Sign(secret, now, body)}
}

func jobFinished(b *buildkite.Build, j buildkite.Job) []byte {
	return mustJSON(map[string]any{
		"event": "job.finished",
		"job": map[string]any{"id": j.ID, "type": j.Type, "name": j.Name, "step_key": j.StepKey, "state": j.State,
			"web_url": j.WebURL, "soft_failed": false, "exit_status": j.ExitStatus},
		"build":    buildPayload(b, "failing"),
		"pipeline": map[string]any{"slug": b.Pipeline.Slug, "name": b.Pipeline.Name, "url": b.Pipeline.URL},
		"sender":   map[string]any{"id": "sender-1", "name": "Load"},
	})
}

func buildFinished(b *buildkite.Build) []byte {
	return mustJSON(map[string]any{
		"event":    "build.finished",
		"build":    buildPayload(b, b.State),
		"pipeline": map[string]any{"slug": b.Pipeline.Slug, "name": b.Pipeline.Name, "url": b.Pipeline.URL},
		"sender":   map[string]any{"id": "sender-1", "name": "Load"},
	})
}

func buildPayload(b *buildkite.Build, state string) map[string]any {
	return map[string]any{"id": b.ID, "number": b.Number, "state": state, "branch": b.Branch, "commit": b.Commit,
		"url": b.URL, "web_url": b.WebURL}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// send posts every delivery, concurrency at a time, and returns each
// one's latency and status.
func send(ctx context.Context, base string, plan []delivery, concurrency int) ([]time.Duration, []int, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	latencies := make([]time.Duration, len(plan))
	statuses := make([]int, len(plan))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				d := plan[i]
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/hooks/"+d.hookID, bytes.NewReader(d.body))
				if err != nil {
					panic(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Buildkite-Event", d.event)
				req.Header.Set("X-Buildkite-Signature", d.signature)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, fmt.Errorf("delivery %d: %w", i, err))
					mu.Unlock()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				latencies[i], statuses[i] = time.Since(t0), resp.StatusCode
			}
		})
	}
	for i := range plan {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return latencies, statuses, firstErr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// analysisRow is what the check needs of a listed analysis.
type analysisRow struct {
	JobID string `json:"job_id"`
	State string `json:"state"`
	Error string `json:"error"`
}

// waitAnalyses polls GET /v1/analyses until it lists n analyses.
func waitAnalyses(ctx context.Context, base string, n int) ([]analysisRow, error) {
	for {
		all, err := listAnalyses(ctx, base)
		if err != nil {
			return nil, err
		}
		if len(all) >= n {
			return all, nil
		}
		select {
		case <-ctx.Done():
			return all, fmt.Errorf("%d of %d failed jobs analyzed when the run's time ran out", len(all), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func listAnalyses(ctx context.Context, base string) ([]analysisRow, error) {
	var all []analysisRow
	cursor := ""
	for {
		url := base + "/v1/analyses?limit=100"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		var page struct {
			Analyses   []analysisRow `json:"analyses"`
			NextCursor string        `json:"next_cursor"`
		}
		if err := getJSON(ctx, url, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Analyses...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

func checkAnalyses(rows []analysisRow, failedJobs []string) error {
	per := map[string]int{}
	for _, r := range rows {
		per[r.JobID]++
		if r.State != "analyzed" {
			return fmt.Errorf("job %s: %s %s", r.JobID, r.State, r.Error)
		}
	}
	for _, id := range failedJobs {
		if per[id] != 1 {
			return fmt.Errorf("failed job %s has %d analyses; want 1", id, per[id])
		}
	}
	if len(per) != len(failedJobs) {
		return fmt.Errorf("%d jobs analyzed; want the %d failed ones", len(per), len(failedJobs))
	}
	return nil
}

// waitAnnotations waits until every failed build has its annotation.
func waitAnnotations(ctx context.Context, bk *fakeBuildkite, builds int) error {
	for {
		_, _, _, anns := bk.counts()
		if len(anns) >= builds {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d failed builds annotated when the run's time ran out", len(anns), builds)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// quietPeriod is how long Buildkite must hear nothing before the work is
// taken to be over: every message the worker takes asks Buildkite first.
const quietPeriod = 500 * time.Millisecond

// waitQuiet waits until the fake has had no request for d.
func waitQuiet(ctx context.Context, bk *fakeBuildkite, d time.Duration) error {
	last, _, _, _ := bk.counts()
	since := time.Now()
	for time.Since(since) < d {
		select {
		case <-ctx.Done():
			return errors.New("the fake Buildkite still had requests when the run's time ran out")
		case <-time.After(20 * time.Millisecond):
		}
		if n, _, _, _ := bk.counts(); n != last {
			last, since = n, time.Now()
		}
	}
	return nil
}

// checkQueueEmpty opens the stopped server's store: no message waits and
// none was given up on.
func checkQueueEmpty(ctx context.Context, dataDir string) error {
	store, err := localstore.Open(dataDir)
	if err != nil {
		return fmt.Errorf("open the data after the run: %w", err)
	}
	defer store.Close()
	pending, err := store.Pending(ctx)
	if err != nil {
		return err
	}
	dead, err := store.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if len(pending) != 0 || len(dead) != 0 {
		var left []string
		for _, m := range append(pending, dead...) {
			left = append(left, fmt.Sprintf("%s (received %d times)", m.Body, m.Receives))
		}
		return fmt.Errorf("%d messages left in the queue and %d dead letters; want none: %s", len(pending), len(dead), strings.Join(left, "; "))
	}
	return nil
}

// serveProcess is the `kitefix serve` child.
type serveProcess struct {
	url    string
	cmd    *exec.Cmd
	stderr *os.File
	once   sync.Once
	rss    int64
	err    error
}

func startServe(ctx context.Context, bin, dataDir, bkURL string) (*serveProcess, error) {
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--reconcile-every", "0")
	cmd.Env = append(os.Environ(), "BUILDKITE_API_URL="+bkURL, "WEBHOOK_BASE_URL=", "LOG_LEVEL=info")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(filepath.Dir(dataDir), "serve.log"))
	if err != nil {
		return nil, err
	}
	p := &serveProcess{cmd: cmd, stderr: logFile}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kitefix serve: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	f := strings.Fields(line)
	if err != nil || len(f) < 4 || f[1] != "serving" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("kitefix serve printed %q (%v); its log: %s", line, err, p.stderr.Name())
	}
	p.url = f[3]
	return p, nil
}

// stop ends the server with SIGTERM, waits, and returns its peak RSS.
func (p *serveProcess) stop() (int64, error) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				p.err = fmt.Errorf("kitefix serve: %w; its log: %s", err, p.stderr.Name())
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
			p.err = errors.New("kitefix serve did not stop within 30 s of SIGTERM")
		}
		_ = p.stderr.Close()
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.rss = ru.Maxrss // KiB on Linux
		}
	})
	return p.rss, p.err
}

// connect connects the fake's token and returns the webhook id and secret.
func connect(ctx context.Context, base string) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v1/integrations/buildkite", strings.NewReader(`{"token":"`+token+`"}`))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	var rec struct {
		State   string `json:"state"`
		Webhook struct {
			URL    string `json:"url"`
			Secret string `json:"secret"`
		} `json:"webhook"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil || rec.State != "connected" || rec.Webhook.Secret == "" {
		return "", "", fmt.Errorf("connect: %d, state %q (%v)", resp.StatusCode, rec.State, err)
	}
	return rec.Webhook.URL[strings.LastIndex(rec.Webhook.URL, "/")+1:], rec.Webhook.Secret, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
