package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/analysis/analysistest"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/queue"
	"github.com/kitefix/kitefix/shared/webhook"
)

// slowLog is a failed unit-test log whose first read waits, so the
// analyze worker is often mid-job when the process is killed.
func slowLog() io.Reader {
	return io.MultiReader(sleepReader(30*time.Millisecond), strings.NewReader(unitTestLog))
}

type sleepReader time.Duration

func (s sleepReader) Read([]byte) (int, error) {
	time.Sleep(time.Duration(s))
	return 0, io.EOF
}

// TestServeKilledAtRandomPoints kills `kitefix serve` (SIGKILL) at random
// moments while failed jobs arrive and are analyzed, and restarts it on
// the same data each time. A delivery the dying process did not answer is
// sent again, as the reconcile pass would find it. In the end every
// failed job has exactly one analysis and nothing is dead-lettered; a
// message still queued belongs to a job whose analysis is stored and whose
// report (annotation, retry) the process was killed in the middle of: it
// is finished when the report lease of that analysis ends, a minute on.
// Few jobs, so one token's request budget (50 a minute) is not what this
// measures.
func TestServeKilledAtRandomPoints(t *testing.T) {
	const (
		token  = "bkua_eeee6666eeee6666eeee6666eeee6666eeee6666"
		builds = 2
		jobs   = 4 // per build
		kills  = 4
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	bk := analysistest.New(t, token, orgA)
	var bodies [][]byte
	var ids []string
	for n := 1; n <= builds; n++ {
		var jobIDs []string
		for j := 1; j <= jobs; j++ {
			jobIDs = append(jobIDs, fmt.Sprintf("b%d-j%d", n, j))
		}
		b := analysistest.FailedBuild(orgA, "web", n, time.Now(), jobIDs...)
		bk.AddBuild(b)
		for _, id := range jobIDs {
			bk.SetLog(id, slowLog)
			bodies = append(bodies, analysistest.JobFinished(orgA, b, id))
			ids = append(ids, id)
		}
	}
	bin := kitefixBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	p := startServeProcess(t, bin, dataDir, bk.URL)
	conn := putJSON(t, p.url+"/v1/integrations/buildkite", `{"token":"`+token+`"}`)
	wh, _ := conn["webhook"].(map[string]any)
	secret, _ := wh["secret"].(string)
	hookURL, _ := wh["url"].(string)
	if secret == "" {
		t.Fatalf("connect: %v", conn)
	}
	hookPath := hookURL[strings.Index(hookURL, "/hooks/"):]

	// acked[i]: delivery i was answered 202 or 200.
	acked := make([]bool, len(bodies))
	var mu sync.Mutex
	sendAll := func(url string) {
		var wg sync.WaitGroup
		for i, body := range bodies {
			mu.Lock()
			done := acked[i]
			mu.Unlock()
			if done {
				continue
			}
			wg.Go(func() {
				if status := postDeliveryQuiet(url+hookPath, body, secret); status == 202 || status == 200 {
					mu.Lock()
					acked[i] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	for k := range kills {
		url := p.url
		sent := make(chan struct{})
		go func() { sendAll(url); close(sent) }()
		time.Sleep(time.Duration(10+rng.IntN(250)) * time.Millisecond)
		p.kill()
		<-sent
		t.Logf("kill %d: %d of %d deliveries answered", k+1, countTrue(&mu, acked), len(acked))
		p = startServeProcess(t, bin, dataDir, bk.URL)
	}
	sendAll(p.url)
	if n := countTrue(&mu, acked); n != len(acked) {
		t.Fatalf("%d of %d deliveries answered by a running server", n, len(acked))
	}

	deadline := time.Now().Add(30 * time.Second)
	var listed []any
	for {
		list := getJSON(t, p.url+"/v1/analyses?limit=100")
		listed, _ = list["analyses"].([]any)
		if len(listed) >= len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after 30 s: %d analyses of %d jobs", len(listed), len(ids))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	perJob := map[string]int{}
	for _, a := range listed {
		m := a.(map[string]any)
		perJob[fmt.Sprint(m["job_id"])]++
		if m["state"] != "analyzed" {
			t.Errorf("analysis of %v: %v %v", m["job_id"], m["state"], m["error"])
		}
	}
	for _, id := range ids {
		if perJob[id] != 1 {
			t.Errorf("job %s: %d analyses; want 1", id, perJob[id])
		}
	}
	if len(perJob) != len(ids) {
		t.Errorf("%d jobs analyzed; want %d", len(perJob), len(ids))
	}

	// Let the last reports finish, then look at the queue with the
	// process gone.
	time.Sleep(300 * time.Millisecond)
	p.kill()
	store, err := localstore.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	pending, err := store.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pending {
		msg, err := queue.Decode(m.Body)
		if err != nil {
			t.Errorf("queued: %s: %v", m.Body, err)
			continue
		}
		rec, err := store.GetAnalysis(ctx, msg.TenantID, "job:"+msg.JobID)
		if err != nil || rec.Reported {
			t.Errorf("job %s still queued (received %d times) with analysis reported=%t (%v); want a stored analysis whose report is pending", msg.JobID, m.Receives, rec.Reported, err)
		}
	}
	t.Logf("%d of %d jobs waiting to finish their report after the kills", len(pending), len(ids))
	dead, err := store.DeadLetters(ctx)
	if err != nil || len(dead) != 0 {
		t.Errorf("%d dead letters (%v); want none", len(dead), err)
	}
}

func countTrue(mu *sync.Mutex, bs []bool) int {
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// postDeliveryQuiet is postDelivery for a server that may die mid-request:
// a failed request is status 0, not a test error.
func postDeliveryQuiet(url string, body []byte, secret string) int {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Buildkite-Event", "job.finished")
	req.Header.Set("X-Buildkite-Signature", webhook.Sign(secret, time.Now(), body))
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func putJSON(t *testing.T, url, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return doJSON(t, req)
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", req.Method, req.URL, resp.StatusCode, err)
	}
	return m
}
