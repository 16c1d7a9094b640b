package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// demoProcess is a `kitefix serve --demo` child process and the two
// addresses it prints: its own and the simulated organization's.
type demoProcess struct {
	*serveProcess
	orgURL  string
	dataDir string
}

var demoDataIn = regexp.MustCompile(`\(data in ([^)]+)\)`)

// startDemoProcess runs the built binary as a person runs `make demo`, with
// every proxy pointing nowhere: the demo must need nothing beyond this
// machine.
func startDemoProcess(t *testing.T) *demoProcess {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command(kitefixBinary(t), "serve", "--demo", "--addr", freeAddr(t))
	cmd.Env = append(os.Environ(), "LOG_LEVEL=info", "TMPDIR="+tmp,
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "http_proxy=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
		"BUILDKITE_API_URL=http://127.0.0.1:9", "WEBHOOK_BASE_URL=https://tunnel.invalid")
	sp, stdout := startProcess(t, cmd, "kitefix serve --demo")
	p := &demoProcess{serveProcess: sp}
	lines := bufio.NewScanner(stdout)
	var printed []string
	for lines.Scan() {
		line := lines.Text()
		printed = append(printed, line)
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "kitefix" && f[1] == "serving" {
			p.url = f[3]
		}
		if m := demoDataIn.FindStringSubmatch(line); m != nil {
			p.dataDir = m[1]
		}
		if _, org, ok := strings.Cut(line, "organization at "); ok && strings.HasPrefix(line, "Demo: open") {
			p.orgURL = strings.Fields(org)[0]
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if p.url == "" || p.orgURL == "" || !strings.HasPrefix(p.dataDir, tmp) {
		t.Fatalf("kitefix serve --demo printed %q; stderr:\n%s", printed, p.output)
	}
	return p
}

// demoItem is one analysis as a person reads it on the page.
type demoItem struct {
	Title, Category, Summary, Actions, Text, BuildLink string
}

const demoItemsJS = `JSON.stringify([...document.querySelectorAll("#analyses > li")].map(li => ({
  Title: li.querySelector("h3").innerText,
  Category: (li.querySelector(".cat") || {}).innerText || "",
  Summary: (li.querySelector(".summary") || {}).innerText || "",
  Actions: (li.querySelector(".acts") || {}).innerText || "",
  Text: li.innerText,
  BuildLink: (li.querySelector("h3 a[href*='/builds/']") || {}).href || "",
})))`

// TestBrowserDemo runs `kitefix serve --demo` and watches its page as a
// newcomer would: connected at once with the demo token, four failing
// builds of four kinds explained within seconds (the lost agent and the
// flaky test retried), and the simulated build pages showing kitefix's
// annotation rendered.
func TestBrowserDemo(t *testing.T) {
	p := startDemoProcess(t)
	browser := newBrowser(t)
	b := newTab(t, browser, viewports[0], "")
	phone := newTab(t, browser, viewports[1], "") // both before any screenshot: each empties the directory
	b.do("open the page", chromedp.Navigate(p.url))
	b.waitFor("connected", `document.getElementById("state").textContent === "Connected"`)
	b.waitFor("the demo note", `!!document.getElementById("demo-note")`)
	note := b.visibleText("#demo-note")
	for _, want := range []string{"simulated Buildkite organization", "bkua_demo", "test failure, compile error, agent lost, flaky test"} {
		if !strings.Contains(note, want) {
			t.Errorf("demo note lacks %q: %q", want, note)
		}
	}
	if got := b.visibleText("#orgs"); !strings.Contains(got, "Acme (simulated)") {
		t.Errorf("organizations = %q, want the simulated one", got)
	}
	if got := b.visibleText("#token-owner"); !strings.Contains(got, "Demo Developer") {
		t.Errorf("token owner = %q, want the simulated organization's developer", got)
	}
	if got := b.eval(`document.querySelector("#demo-note a[href='#failures-h']") ? "yes" : "no"`); got != "yes" {
		t.Errorf("the demo note has no link down to the failures")
	}
	if got := b.eval(`document.querySelector("#demo-note a").href`); got != p.orgURL+"/" {
		t.Errorf("demo note links to %q, want the simulated organization %s/", got, p.orgURL)
	}

	// The first failure arrives a few seconds after the start, the last
	// about twelve seconds later; the page refreshes itself meanwhile.
	pollJS := func(what, cond string, timeout time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(timeout))); err != nil {
			t.Fatalf("wait for %s: %v\npage says: %s", what, err, b.visibleText("main"))
		}
	}
	pollJS("the first explained failure", `document.querySelectorAll("#analyses > li").length >= 1`, 20*time.Second)
	b.shot("demo-first-failure")
	pollJS("four explained failures, two retried", `document.querySelectorAll("#analyses > li").length === 4 &&
		[...document.querySelectorAll("#analyses .acts")].filter(e => e.innerText.includes("Retried the job")).length === 2`, 40*time.Second)
	b.shot("demo-all-failures")

	var items []demoItem
	if err := json.Unmarshal([]byte(b.eval(demoItemsJS)), &items); err != nil {
		t.Fatalf("read the analyses: %v", err)
	}
	want := []struct {
		build, category, summary string
		retried                  bool
	}{
		{"#1042", "TEST", "TestRefundPartialAmount", false},
		{"#318", "COMPILE", "error TS2322: Type 'string' is not assignable to type 'number'", false},
		{"#1043", "INFRASTRUCTURE", "The agent was lost", true},
		{"#877", "TEST", "test_reindex_picks_up_late_writes", true},
	}
	links := map[string]string{}
	for _, w := range want {
		var got *demoItem
		for i := range items {
			if strings.Contains(items[i].Title, "build "+w.build) {
				got = &items[i]
			}
		}
		if got == nil {
			t.Errorf("no analysis of build %s on the page; titles: %+v", w.build, items)
			continue
		}
		links[w.build] = got.BuildLink
		if got.Category != w.category {
			t.Errorf("build %s: category %q, want %q", w.build, got.Category, w.category)
		}
		if !strings.Contains(got.Summary, w.summary) {
			t.Errorf("build %s: summary %q, want it to say %q", w.build, got.Summary, w.summary)
		}
		if !strings.Contains(got.Actions, "Annotated the build") {
			t.Errorf("build %s: actions %q, want the build annotated", w.build, got.Actions)
		}
		if retried := strings.Contains(got.Actions, "Retried the job"); retried != w.retried {
			t.Errorf("build %s: actions %q, want retried %v", w.build, got.Actions, w.retried)
		}
		if !w.retried && !strings.Contains(got.Actions, "Not retried: a ") {
			t.Errorf("build %s: actions %q, want why it was not retried", w.build, got.Actions)
		}
		if !strings.HasPrefix(got.BuildLink, p.orgURL+"/acme/") {
			t.Errorf("build %s: build link %q, want the simulated organization's page", w.build, got.BuildLink)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// A person on a phone sees the same list.
	phone.do("open the page on a phone", chromedp.Navigate(p.url))
	phone.waitFor("the list", `document.querySelectorAll("#analyses > li").length === 4`)
	phone.shot("demo-all-failures")

	// The build links open the simulated builds: the lost agent's build
	// shows kitefix's annotation as Buildkite renders it, and the retry
	// that passed.
	b.do("open the lost agent's build", chromedp.Navigate(links["#1043"]))
	b.waitFor("the annotation", `!!document.getElementById("annotation-kitefix")`)
	b.waitFor("the retry to pass", `document.getElementById("build-state").textContent === "passed"`)
	ann := b.visibleText("#annotation-kitefix")
	for _, want := range []string{"kitefix: 1 distinct failure in 1 failed job", "infrastructure · The agent was lost",
		"Agent lost: Buildkite lost contact with the agent ci-spot-7", "from line", "(retried by kitefix)", "Analyzed from the raw job logs by kitefix."} {
		if !strings.Contains(ann, want) {
			t.Errorf("annotation of build 1043 lacks %q: %q", want, ann)
		}
	}
	rendered := b.eval(`(() => { const a = document.getElementById("annotation-kitefix");
		return [a.querySelector("h4") ? "h4" : "", a.querySelector("strong") ? "strong" : "", a.querySelector("pre code") ? "pre" : "",
		  a.querySelector("sub") ? "sub" : "", a.querySelector("a[href*='#']") ? "a" : "", a.querySelector("hr") ? "hr" : ""].join(" ") })()`)
	if rendered != "h4 strong pre sub a hr" {
		t.Errorf("annotation elements = %q, want the Markdown rendered (h4 strong pre sub a hr)", rendered)
	}
	if strings.Contains(ann, "**") || strings.Contains(ann, "```") || strings.Contains(ann, "<sub>") {
		t.Errorf("annotation shows Markdown source: %q", ann)
	}
	if got := b.eval(`[...document.querySelectorAll(".job")].map(j => j.dataset.state).join(" ")`); got != "passed passed failed passed" {
		t.Errorf("job states = %q, want two passed steps, the failed job and its passed retry", got)
	}
	b.shot("demo-build-agent-lost")

	b.do("open the compile error's build", chromedp.Navigate(links["#318"]))
	b.waitFor("the annotation", `!!document.getElementById("annotation-kitefix")`)
	ann = b.visibleText("#annotation-kitefix")
	for _, want := range []string{"compile · src/cart/totals.ts:42: error TS2322", "src/cart/totals.ts(42,7)", "Job: :typescript: typecheck"} {
		if !strings.Contains(ann, want) {
			t.Errorf("annotation of build 318 lacks %q: %q", want, ann)
		}
	}
	if got := b.eval(`document.getElementById("build-state").textContent`); got != "failed" {
		t.Errorf("build 318 state = %q, want failed (a compile error is not retried)", got)
	}
	b.shot("demo-build-compile-error")

	phone.do("open a build on a phone", chromedp.Navigate(links["#877"]))
	phone.waitFor("the annotation", `!!document.getElementById("annotation-kitefix")`)
	phone.shot("demo-build-flaky-test")

	// Stopped, the demo leaves no data behind.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("kitefix serve --demo did not stop on SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("kitefix serve --demo exited %d on SIGTERM, want 0", code)
	}
	if _, err := os.Stat(p.dataDir); !os.IsNotExist(err) {
		t.Errorf("demo data %s after the demo stopped: %v, want it removed", p.dataDir, err)
	}
}
