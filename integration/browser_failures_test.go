package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kitefix/kitefix/shared/analysis/analysistest"
)

// Logs of failed jobs, one per kind of failure the list shows.
var failureLogs = map[string]string{
	"test": strings.Join([]string{
		"~~~ Preparing working directory",
		"$ git checkout -f abcd0b7",
		"HEAD is now at abcd0b7 Add checkout totals",
		"+++ :go: Running tests",
		"$ go test ./...",
		"ok  \tgithub.com/acme/shop/cart\t0.012s",
		"--- FAIL: TestCheckoutTotal (0.02s)",
		"    checkout_test.go:42: total = 99, want 100 (rounding of the discount applied to every line of a long order with many items in it, which a phone cannot show on one line)",
		"FAIL",
		"FAIL\tgithub.com/acme/shop/checkout\t0.031s",
		"🚨 Error: The command exited with status 1",
	}, "\n") + "\n",
	"compile": strings.Join([]string{
		"+++ :go: Build",
		"$ go build ./...",
		"# github.com/acme/shop/api",
		"api/server.go:17:2: undefined: handlerFunc",
		"api/server.go:23:9: cannot use s (variable of type *Server) as http.Handler value",
		"🚨 Error: The command exited with status 1",
	}, "\n") + "\n",
}

// failuresEnv is the local stack with its analyze worker running against
// a fake Buildkite that knows builds, jobs and logs.
type failuresEnv struct {
	*pageEnv
	bk     *analysistest.Server
	secret string
	hook   string
}

func newFailuresEnv(t *testing.T) *failuresEnv {
	t.Helper()
	bk := analysistest.New(t, tokGood, "acme")
	e := &failuresEnv{pageEnv: newPageEnvWith(t, bk.URL, nil), bk: bk}

	body, _ := json.Marshal(map[string]string{"token": tokGood})
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/v1/integrations/buildkite", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer res.Body.Close()
	var rec struct {
		State   string `json:"state"`
		Webhook struct {
			URL    string `json:"url"`
			Secret string `json:"secret"`
		} `json:"webhook"`
	}
	if err := json.NewDecoder(res.Body).Decode(&rec); err != nil || rec.State != "connected" {
		t.Fatalf("connect: state %q, status %d (%v)", rec.State, res.StatusCode, err)
	}
	e.secret, e.hook = rec.Webhook.Secret, rec.Webhook.URL

	// The worker, with no reconcile pass: every failure arrives by webhook.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.local.RunWorker(ctx, 0) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return e
}

// fail adds failed build number of pipeline "shop" whose one job logs the
// given kind of failure, and delivers Buildkite's job.finished webhook.
func (e *failuresEnv) fail(number int, kind string) {
	e.t.Helper()
	jobID := fmt.Sprintf("0190a1b2-0000-4000-8000-%012d", number)
	b := analysistest.FailedBuild("acme", "shop", number, time.Now().Add(-time.Minute), jobID)
	b.Message = "Build " + fmt.Sprint(number)
	e.bk.SetLogText(jobID, failureLogs[kind])
	e.bk.AddBuild(b)
	j := b.Jobs[0]
	api := "https://api.buildkite.com/v2/organizations/acme/pipelines/shop"
	e.deliver("job.finished", map[string]any{
		"event": "job.finished",
		"job": map[string]any{"id": j.ID, "type": "script", "name": j.Name, "step_key": j.StepKey, "state": "failed",
			"web_url": j.WebURL, "exit_status": 1, "soft_failed": false, "retried": false},
		"build": map[string]any{"id": b.ID, "number": b.Number, "state": "failing", "url": fmt.Sprintf("%s/builds/%d", api, number),
			"web_url": b.WebURL, "branch": b.Branch, "commit": b.Commit, "message": b.Message},
		"pipeline": map[string]any{"slug": "shop", "name": "shop", "url": api},
		"sender":   map[string]any{"name": "Some Person"},
	}, http.StatusAccepted)
}

// deliver posts a webhook to the stack as Buildkite does, signed with the
// webhook secret, and checks the status it gets.
func (e *failuresEnv) deliver(event string, payload map[string]any, want int) {
	e.t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatalf("encode %s: %v", event, err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(e.secret))
	mac.Write([]byte(ts + "." + string(body)))
	req, _ := http.NewRequest(http.MethodPost, e.hook, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Buildkite-Event", event)
	req.Header.Set("X-Buildkite-Signature", "timestamp="+ts+",signature="+hex.EncodeToString(mac.Sum(nil)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("deliver %s: %v", event, err)
	}
	res.Body.Close()
	if res.StatusCode != want {
		e.t.Fatalf("deliver %s: status %d, want %d", event, res.StatusCode, want)
	}
}

// TestBrowserFailuresExplained shows the analyses of failed jobs on the
// page of `kitefix serve`, at desktop and phone widths: the empty state
// before and after Buildkite's first webhook, the list as job.finished
// webhooks arrive while the page is open (it refreshes itself), each
// analysis as a person reads it, older pages, and no refreshing while the
// tab is hidden.
func TestBrowserFailuresExplained(t *testing.T) {
	browser := newBrowser(t)
	for _, vp := range viewports {
		t.Run(vp.name, func(t *testing.T) {
			e := newFailuresEnv(t)
			b := newTab(t, browser, vp, `window.kitefix = { refreshSeconds: 1, pageSize: 3 };`)
			b.do("open the page", chromedp.Navigate(e.srv.URL))
			b.waitFor("connected", `document.getElementById("state").textContent === "Connected"`)
			b.waitFor("the empty list", `!document.getElementById("failures-empty").hidden`)
			if got := b.visibleText("#failures"); !strings.Contains(got, "Waiting for Buildkite's first webhook") || !strings.Contains(got, "appears here") {
				t.Errorf("empty failures = %q, want what will appear and why", got)
			}
			b.shot("failures-empty")

			// Buildkite's ping: the webhook works, no failure yet.
			e.deliver("ping", map[string]any{"event": "ping", "service": map[string]any{"provider": "webhook"},
				"organization": map[string]any{"slug": "acme", "name": "Acme"}, "sender": map[string]any{"name": "Some Person"}}, http.StatusOK)
			b.waitFor("the ping", `!!document.querySelector("#last-delivery time")`)
			if got := b.visibleText("#failures"); !strings.Contains(got, "No failed jobs yet") {
				t.Errorf("empty failures after the first delivery = %q", got)
			}
			if got := b.visibleText("#last-delivery"); rfc3339.MatchString(got) || !strings.Contains(got, fmt.Sprint(time.Now().Year())) {
				t.Errorf("last delivery = %q, want a time in the reader's locale", got)
			}
			b.shot("failures-webhook-ping")

			// Failures arrive while the page is open.
			e.fail(101, "compile")
			e.fail(102, "test")
			e.fail(103, "compile")
			e.fail(104, "test")
			b.waitFor("the first page of analyses", `document.querySelectorAll("#analyses > li").length === 3 && !document.getElementById("more").hidden`)
			b.shot("failures-list")
			b.click("#more")
			b.waitFor("the older page", `document.querySelectorAll("#analyses > li").length === 4`)
			if b.visible("#more") {
				t.Errorf("'Show older failures' stays after the last page")
			}
			// Newest first: as analysed, which is not build order.
			times := b.eval(`[...document.querySelectorAll("#analyses > li .meta time")].map(e => e.getAttribute("datetime")).join(" ")`)
			if ts := strings.Fields(times); len(ts) != 4 || !slices.IsSortedFunc(ts, func(a, b string) int { return strings.Compare(b, a) }) {
				t.Errorf("analysed times in page order = %q, want 4, newest first", times)
			}
			item := func(build int) string {
				return fmt.Sprintf(`[...document.querySelectorAll("#analyses > li")].find(li => li.querySelector("h3").innerText.includes("#%d"))`, build)
			}
			testItem := b.eval(item(104) + `.innerText`)
			for _, want := range []string{"shop", "build #104", "step 1", "TEST", "1 failing test(s): TestCheckoutTotal", "Failing tests", "checkout_test.go:42",
				"What kitefix did", "Annotated the build", "Not retried", "Open the job in Buildkite", "branch main", "abcd0b72a1"} {
				if !strings.Contains(testItem, want) {
					t.Errorf("test failure analysis lacks %q: %q", want, testItem)
				}
			}
			if got := b.eval(item(104) + `.querySelector(".excerpt .ln").textContent.trim()`); got != "7" {
				t.Errorf("excerpt starts at line %q, want 7 (the FAIL line)", got)
			}
			if got := b.eval(item(104) + `.querySelector(".excerpt").innerText`); !strings.Contains(got, "--- FAIL: TestCheckoutTotal") || !strings.Contains(got, "8") {
				t.Errorf("excerpt = %q", got)
			}
			if got := b.eval(item(104) + `.querySelector(".excerpt").getAttribute("aria-label")`); got != "Log lines 7 to 8" {
				t.Errorf("excerpt label = %q", got)
			}
			if got := b.eval(item(104) + `.querySelector("a[href*='/builds/']").href`); got != "https://buildkite.com/acme/shop/builds/104" {
				t.Errorf("build link = %q", got)
			}
			compileItem := b.eval(item(103) + `.innerText`)
			for _, want := range []string{"COMPILE", "undefined: handlerFunc", "api/server.go:17:2", "Errors"} {
				if !strings.Contains(compileItem, want) {
					t.Errorf("compile failure analysis lacks %q: %q", want, compileItem)
				}
			}
			b.shot("failures-paged")
			if b.width < 400 {
				b.do("320 px", chromedp.EmulateViewport(320, 700))
				b.checkLayout("failures at 320 px")
				b.do("back", chromedp.EmulateViewport(b.width, 812))
			}

			// A hidden tab asks nothing; shown again, it catches up at once.
			b.eval(`Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
				Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
				document.dispatchEvent(new Event("visibilitychange")); ""`)
			time.Sleep(300 * time.Millisecond) // let a refresh already under way land
			before := e.calls("GET /v1/analyses")
			e.fail(105, "test")
			time.Sleep(2500 * time.Millisecond) // more than two refresh periods
			if n := e.calls("GET /v1/analyses") - before; n != 0 {
				t.Errorf("a hidden tab asked for analyses %d times", n)
			}
			b.eval(`Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
				Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
				document.dispatchEvent(new Event("visibilitychange")); ""`)
			b.waitFor("the new failure at the top", `(document.querySelector("#analyses > li h3") || {innerText: ""}).innerText.includes("#105")`)
			if got := b.visibleText("#failures-status"); !strings.Contains(got, "new failure") {
				t.Errorf("status after a new failure = %q", got)
			}
			if n := b.eval(`String(document.querySelectorAll("#analyses > li").length)`); n != "5" {
				t.Errorf("%s analyses shown after the refresh, want the 5 there are", n)
			}
			b.shot("failures-refreshed")

			// A refresh keeps a keyboard user's place in the list.
			b.eval(item(104) + `.querySelector("a[href*='/builds/']").focus(); ""`)
			e.fail(106, "compile")
			b.waitFor("build 106 at the top", `document.querySelector("#analyses > li h3").innerText.includes("#106")`)
			if got := b.eval(`document.activeElement.href || document.activeElement.tagName`); got != "https://buildkite.com/acme/shop/builds/104" {
				t.Errorf("focus after a refresh is on %q, want the build link it was on", got)
			}
			setColorScheme(t, b, "dark")
			b.shot("failures-dark")
			setColorScheme(t, b, "light")
		})
	}
}
