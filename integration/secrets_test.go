package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kitefix/kitefix/shared/analysis/analysistest"
)

// leakForms are the ways a secret could show up in bytes: as itself, in
// hex (either case), and in base64 (standard and URL alphabets) at each of
// the three alignments it can have inside a longer encoded text.
func leakForms(secret string) map[string]string {
	forms := map[string]string{
		"raw":       secret,
		"hex":       hex.EncodeToString([]byte(secret)),
		"hex upper": strings.ToUpper(hex.EncodeToString([]byte(secret))),
	}
	for off := range 3 {
		padded := append(bytes.Repeat([]byte{0}, off), secret...)
		for name, enc := range map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64url": base64.URLEncoding} {
			s := enc.EncodeToString(padded)
			// Drop the characters that depend on the bytes before the
			// secret, and the last group, which depends on what follows.
			lead := []int{0, 2, 3}[off]
			core := strings.TrimRight(s, "=")
			core = core[lead : len(core)-4]
			forms[name+" at offset "+string(rune('0'+off))] = core
		}
	}
	return forms
}

// leakScan looks for secrets in named pieces of output.
type leakScan struct {
	t       *testing.T
	secrets map[string]string // name → value
	scanned int
}

func (l *leakScan) check(where string, data []byte) {
	l.t.Helper()
	l.scanned += len(data)
	for name, secret := range l.secrets {
		for form, needle := range leakForms(secret) {
			if bytes.Contains(data, []byte(needle)) {
				l.t.Errorf("%s holds the %s (%s)", where, name, form)
			}
		}
	}
}

// leakyLog is the log of a job whose agent was lost after it printed token.
func leakyLog(token string) string {
	return "~~~ Running tests\n$ make test\nexport BUILDKITE_API_TOKEN=" + token + "\nError: token " + token + " rejected\n" +
		"# Exited with status -1 (process killed or agent lost; see the timeline tab for more information)\n"
}

// withoutHandedOutSecret removes the webhook secret a connect or rotate
// response hands out (its one allowed place) and returns the rest.
func withoutHandedOutSecret(t *testing.T, body string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("response is not JSON: %s", body)
	}
	if wh, ok := m["webhook"].(map[string]any); ok {
		delete(wh, "secret")
	}
	b, _ := json.Marshal(m)
	return b
}

// TestSecretsNeverLeave runs the main flows with known API tokens and
// webhook secrets, on the AWS functions over kumo and on a `kitefix serve`
// process: connect (and a refused token), status, re-verify, webhook
// deliveries signed and by token, analysis with an annotation and a retry,
// a token revoked mid-way, rotation and disconnection. Then it searches
// every byte they produced for the secrets, raw, hex and base64: responses
// (bar the one field that hands out a new webhook secret), log lines,
// every DynamoDB item, every queue message, the requests sent to Buildkite
// (annotations, retries), the data directory of `kitefix serve` and its
// goroutine dump on SIGQUIT.
func TestSecretsNeverLeave(t *testing.T) {
	const refusedToken = "bkua_cccc3333cccc3333cccc3333cccc3333cccc3333"
	e := newTwoTenants(t)
	s := e.s
	scan := &leakScan{t: t, secrets: map[string]string{"token A": tokenA, "token B": tokenB, "refused token": refusedToken}}
	var responses [][]byte
	keep := func(r apiResponse) apiResponse {
		responses = append(responses, withoutHandedOutSecret(t, r.body))
		return r
	}
	keep(e.connectA)
	keep(e.connectB)
	// B's job prints its token before it fails: the analysis quotes the
	// log, and must not quote the token.
	e.bkB.SetLogText("j-1", leakyLog(tokenB))

	if r := keep(s.call(t, tenantA, "PUT", "/v1/integrations/buildkite", `{"token":"`+refusedToken+`"}`, nil)); r.status != 422 {
		t.Errorf("connect with a token Buildkite refuses: %d %s; want 422", r.status, r.body)
	}
	keep(s.call(t, tenantA, "GET", "/v1/integrations/buildkite", "", nil))
	keep(s.call(t, tenantB, "POST", "/v1/integrations/buildkite/verify", "", nil))

	// Deliveries: signed, by token, a forged signature, a wrong token.
	bodyA := analysistest.JobFinished(orgA, e.buildA, "j-1")
	bodyB := analysistest.JobFinished(orgB, e.buildB, "j-1")
	deliveries := []struct {
		id      string
		headers map[string]string
		body    []byte
		want    int
	}{
		{e.hookA, map[string]string{"x-buildkite-event": "job.finished", "x-buildkite-token": e.secretA}, bodyA, http.StatusAccepted},
		{e.hookB, map[string]string{"x-buildkite-event": "job.finished", "x-buildkite-signature": "timestamp=1,signature=00"}, bodyB, http.StatusUnauthorized},
		{e.hookB, map[string]string{"x-buildkite-event": "job.finished", "x-buildkite-token": e.secretA}, bodyB, http.StatusUnauthorized},
		{e.hookB, map[string]string{"x-buildkite-event": "job.finished", "x-buildkite-token": e.secretB + "x"}, bodyB, http.StatusUnauthorized},
		{e.hookB, map[string]string{"x-buildkite-event": "job.finished"}, bodyB, http.StatusUnauthorized},
	}
	for _, d := range deliveries {
		status, resp := s.deliverWith(t, d.id, d.headers, d.body)
		if status != d.want {
			t.Errorf("delivery %v: %d %s; want %d", d.headers, status, resp, d.want)
		}
		responses = append(responses, []byte(resp))
	}
	status, resp := s.deliver(t, e.hookB, e.secretB, "job.finished", bodyB)
	if status != http.StatusAccepted {
		t.Errorf("signed delivery: %d %s", status, resp)
	}
	responses = append(responses, []byte(resp))
	// A's second job finds the token revoked while its log is read.
	e.bkA.Fail("/jobs/j-2/log", analysistest.Fault{Status: http.StatusUnauthorized})
	status, resp = s.deliver(t, e.hookA, e.secretA, "job.finished", analysistest.JobFinished(orgA, e.buildA, "j-2"))
	if status != http.StatusAccepted {
		t.Errorf("signed delivery: %d %s", status, resp)
	}
	responses = append(responses, []byte(resp))
	if back := s.drain(t); len(back) != 0 {
		t.Fatalf("messages went back: %v", back)
	}
	if len(e.bkA.Annotations()) == 0 || len(e.bkB.Retries()) != 1 {
		t.Fatalf("flows incomplete: %d annotations of A, retries of B %v", len(e.bkA.Annotations()), e.bkB.Retries())
	}
	keep(s.call(t, tenantA, "GET", "/v1/analyses?limit=100", "", nil))
	keep(s.call(t, tenantB, "GET", "/v1/analyses?limit=100", "", nil))

	rot := keep(s.call(t, tenantB, "POST", "/v1/integrations/buildkite/webhook-secret", "", nil))
	_, rotated := rot.webhookOf(t)
	keep(s.call(t, tenantB, "GET", "/v1/integrations/buildkite", "", nil))
	keep(s.call(t, tenantA, "DELETE", "/v1/integrations/buildkite", "", nil))
	keep(s.call(t, tenantB, "DELETE", "/v1/integrations/buildkite", "", nil))
	status, resp = s.deliver(t, e.hookB, rotated, "job.finished", bodyB)
	if status != http.StatusUnauthorized {
		t.Errorf("delivery after disconnect: %d; want 401", status)
	}
	responses = append(responses, []byte(resp))

	scan.secrets["webhook secret A"] = e.secretA
	scan.secrets["webhook secret B"] = e.secretB
	scan.secrets["rotated webhook secret B"] = rotated
	scan.check("settings API and webhook responses", bytes.Join(responses, []byte("\n")))
	scan.check("function logs", []byte(s.logs.String()))
	scan.check("DynamoDB items", scanTable(t, s.k))
	s.mu.Lock()
	scan.check("queue messages", bytes.Join(s.sent, []byte("\n")))
	s.mu.Unlock()
	dead := s.receive(t, s.dlqURL)
	for _, m := range dead.Records {
		scan.check("dead-letter queue", []byte(m.Body))
	}
	var sentToBuildkite []string
	for _, fake := range []*analysistest.Server{e.bkA, e.bkB} {
		for _, a := range fake.Annotations() {
			sentToBuildkite = append(sentToBuildkite, a.Body)
		}
	}
	sentToBuildkite = append(sentToBuildkite, s.bk.sentBodies()...)
	scan.check("requests and annotations sent to Buildkite", []byte(strings.Join(sentToBuildkite, "\n")))

	t.Run("kitefix serve", func(t *testing.T) { secretsOnServe(t, scan) })
	if scan.scanned < 10_000 {
		t.Errorf("scanned %d bytes in all; the flows produced less than expected", scan.scanned)
	}
}

// secretsOnServe runs the flows on a `kitefix serve` process and scans its
// output, its data directory and its goroutine dump.
func secretsOnServe(t *testing.T, parent *leakScan) {
	const token = "bkua_dddd4444dddd4444dddd4444dddd4444dddd4444"
	bk := analysistest.New(t, token, orgA)
	build := analysistest.FailedBuild(orgA, "web", 7, time.Now(), "lost", "unit")
	bk.AddBuild(build)
	bk.SetLogText("lost", leakyLog(token))
	bk.SetLogText("unit", unitTestLog)
	dataDir := filepath.Join(t.TempDir(), "data")
	p := startServeProcess(t, kitefixBinary(t), dataDir, bk.URL)
	scan := &leakScan{t: t, secrets: map[string]string{"token": token}}
	var responses []string
	do := func(method, path, body string) map[string]any {
		req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		responses = append(responses, string(withoutHandedOutSecret(t, string(raw))))
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}
	conn := do("PUT", "/v1/integrations/buildkite", `{"token":"`+token+`"}`)
	wh, _ := conn["webhook"].(map[string]any)
	hookURL, _ := wh["url"].(string)
	secret, _ := wh["secret"].(string)
	if conn["state"] != "connected" || secret == "" {
		t.Fatalf("connect: %v", conn)
	}
	scan.secrets["webhook secret"] = secret
	for _, job := range []string{"lost", "unit", "unit"} {
		if status := postDelivery(t, hookURL, analysistest.JobFinished(orgA, build, job), secret); status != 202 && status != 200 {
			t.Errorf("delivery of %s: %d", job, status)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		list := do("GET", "/v1/analyses?limit=10", "")
		if a, _ := list["analyses"].([]any); len(a) == 2 && len(bk.Retries()) == 1 && len(bk.Annotations()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("analyses not done after 20 s: %v, retries %v", list, bk.Retries())
		}
		time.Sleep(50 * time.Millisecond)
	}
	do("POST", "/v1/integrations/buildkite/verify", "")
	rot := do("POST", "/v1/integrations/buildkite/webhook-secret", "")
	rotWebhook, _ := rot["webhook"].(map[string]any)
	rotated, _ := rotWebhook["secret"].(string)
	if rotated == "" || rotated == secret {
		t.Fatalf("rotate: %v", rot)
	}
	scan.secrets["rotated webhook secret"] = rotated
	do("DELETE", "/v1/integrations/buildkite", "")

	// SIGQUIT: the Go runtime prints every goroutine's stack and exits.
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("kitefix serve did not exit on SIGQUIT")
	}
	out := p.output.String()
	if !strings.Contains(out, "goroutine ") {
		t.Errorf("no goroutine dump in the output of SIGQUIT")
	}
	scan.check("serve responses", []byte(strings.Join(responses, "\n")))
	scan.check("serve log and goroutine dump", []byte(out))
	var annotations []string
	for _, a := range bk.Annotations() {
		annotations = append(annotations, a.Body)
	}
	scan.check("annotations", []byte(strings.Join(annotations, "\n")))
	files := 0
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		scan.check("data file "+filepath.Base(path), b)
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("read the data directory: %v (%d files)", err, files)
	}
	parent.scanned += scan.scanned
}

// scanTable returns every attribute name and value of every item of the
// env's table, binary values as their raw bytes.
func scanTable(t *testing.T, k *kumoEnv) []byte {
	t.Helper()
	var out bytes.Buffer
	var start map[string]types.AttributeValue
	items := 0
	for {
		page, err := k.DynamoDB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(k.Table), ExclusiveStartKey: start})
		if err != nil {
			t.Fatalf("scan table: %v", err)
		}
		for _, it := range page.Items {
			items++
			writeAttr(&out, &types.AttributeValueMemberM{Value: it})
			out.WriteByte('\n')
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		start = page.LastEvaluatedKey
	}
	if items == 0 {
		t.Fatal("the table is empty")
	}
	return out.Bytes()
}

func writeAttr(w *bytes.Buffer, av types.AttributeValue) {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		w.WriteString(v.Value)
	case *types.AttributeValueMemberN:
		w.WriteString(v.Value)
	case *types.AttributeValueMemberB:
		w.Write(v.Value)
	case *types.AttributeValueMemberSS:
		w.WriteString(strings.Join(v.Value, " "))
	case *types.AttributeValueMemberNS:
		w.WriteString(strings.Join(v.Value, " "))
	case *types.AttributeValueMemberBS:
		w.Write(bytes.Join(v.Value, []byte(" ")))
	case *types.AttributeValueMemberL:
		for _, x := range v.Value {
			writeAttr(w, x)
			w.WriteByte(' ')
		}
	case *types.AttributeValueMemberM:
		for k, x := range v.Value {
			w.WriteString(k + "=")
			writeAttr(w, x)
			w.WriteByte(' ')
		}
	}
}

// TestLeakFormsFindEncodedSecrets checks the scanner itself: a secret
// encoded inside longer text, at any alignment, is found.
func TestLeakFormsFindEncodedSecrets(t *testing.T) {
	t.Parallel()
	const secret = "bkua_0123456789abcdef0123456789abcdef01234567"
	for pre := range 6 {
		text := strings.Repeat("p", pre) + secret + "suffix"
		for name, enc := range map[string]string{
			"raw":       text,
			"hex":       hex.EncodeToString([]byte(text)),
			"HEX":       strings.ToUpper(hex.EncodeToString([]byte(text))),
			"base64":    base64.StdEncoding.EncodeToString([]byte(text)),
			"base64url": base64.RawURLEncoding.EncodeToString([]byte(text)),
		} {
			found := false
			for _, needle := range leakForms(secret) {
				found = found || strings.Contains(enc, needle)
			}
			if !found {
				t.Errorf("%s with %d bytes before it: not found", name, pre)
			}
		}
	}
	for _, needle := range leakForms(secret) {
		if strings.Contains("nothing secret here, not even bkua_0123", needle) {
			t.Errorf("form %q found in clean text", needle)
		}
	}
}
