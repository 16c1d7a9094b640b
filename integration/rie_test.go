package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/syncbuf"
)

// lambdaBuilds holds the bootstraps built during this run of the package's
// tests: each function is built once, into dir, which TestMain removes.
var lambdaBuilds struct {
	dir    string
	mu     sync.Mutex
	builds map[string]*lambdaBuild
}

// lambdaBuild is one function's bootstrap, built at most once.
type lambdaBuild struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

// TestMain gives the Lambda builds a directory for the run and removes it
// afterwards.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kitefix-lambda-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "make a directory for the Lambda builds:", err)
		os.Exit(1)
	}
	lambdaBuilds.dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildFunction builds functions/<name> of the main module as a Lambda
// bootstrap (linux, this machine's architecture, no cgo, -tags
// lambda.norpc, as the Makefile does for arm64) and returns its path. Each
// function is built once per run.
func buildFunction(t *testing.T, name string) string {
	t.Helper()
	lambdaBuilds.mu.Lock()
	if lambdaBuilds.builds == nil {
		lambdaBuilds.builds = map[string]*lambdaBuild{}
	}
	b, ok := lambdaBuilds.builds[name]
	if !ok {
		b = &lambdaBuild{}
		lambdaBuilds.builds[name] = b
	}
	lambdaBuilds.mu.Unlock()

	b.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("find the go command: %w", err)
			return
		}
		b.path = filepath.Join(lambdaBuilds.dir, name, "bootstrap")
		cmd := exec.Command(goBin, "build", "-tags", "lambda.norpc", "-trimpath", "-o", b.path, "./functions/"+name)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("build functions/%s: %v\n%s", name, b.err, b.out)
	}
	return b.path
}

// rieBinary returns the Lambda Runtime Interface Emulator to run:
// $KITEFIX_RIE (the Makefile sets it), else aws-lambda-rie on PATH. Without
// either the test fails: `make tools` installs it.
func rieBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KITEFIX_RIE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("KITEFIX_RIE: %v; run `make tools` to install aws-lambda-rie", err)
		}
		return p
	}
	p, err := exec.LookPath("aws-lambda-rie")
	if err != nil {
		t.Fatalf("aws-lambda-rie not found: set KITEFIX_RIE or put it on PATH (`make tools` installs it into bin/tools)")
	}
	return p
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return addr
}

// lambdaFunction is one bootstrap running under the emulator.
type lambdaFunction struct {
	name   string
	url    string // invocation URL
	client *http.Client
	mu     sync.Mutex // one invocation at a time: a concurrent one crashes the emulator
	output *syncbuf.Buffer
	exited chan struct{}
}

// rieEnv is the environment every function gets under the emulator: fake
// credentials and region, no shared config files, a Lambda timeout. Callers
// add the function's own variables and AWS endpoints.
func rieEnv(t *testing.T, name string) map[string]string {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	return map[string]string{
		"PATH":                            os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID":               kumoAccessKey,
		"AWS_SECRET_ACCESS_KEY":           kumoSecretKey,
		"AWS_REGION":                      kumoRegion,
		"AWS_DEFAULT_REGION":              kumoRegion,
		"AWS_CONFIG_FILE":                 none,
		"AWS_SHARED_CREDENTIALS_FILE":     none,
		"AWS_EC2_METADATA_DISABLED":       "true",
		"AWS_LAMBDA_FUNCTION_NAME":        name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "30",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"LOG_LEVEL":                       "info",
	}
}

// startFunction builds functions/<name> and runs it under aws-lambda-rie
// with exactly env (see rieEnv), in its own process group; when the test
// ends the emulator and the bootstrap are killed. The emulator's output
// (the function's logs) is shown when the test fails.
func startFunction(t *testing.T, name string, env map[string]string) *lambdaFunction {
	t.Helper()
	rie := rieBinary(t)
	bootstrap := buildFunction(t, name)
	addr := freeAddr(t)
	apiAddr := freeAddr(t)

	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var environ []string
	for _, k := range keys {
		environ = append(environ, k+"="+env[k])
	}

	f := &lambdaFunction{
		name:   name,
		url:    "http://" + addr + "/2015-03-31/functions/function/invocations",
		client: &http.Client{Timeout: 2 * time.Minute},
		output: &syncbuf.Buffer{},
		exited: make(chan struct{}),
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = environ
	cmd.Stdout = f.output
	cmd.Stderr = f.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", rie, err)
	}
	go func() {
		_ = cmd.Wait()
		close(f.exited)
	}()
	t.Cleanup(func() {
		// The bootstrap is the emulator's child, in its process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-f.exited
		if t.Failed() {
			t.Logf("%s under aws-lambda-rie, output:\n%s", name, f.output)
		}
	})

	// Wait until the emulator accepts connections, or has exited.
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case <-f.exited:
			t.Fatalf("aws-lambda-rie exited before accepting invocations:\n%s", f.output)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-lambda-rie does not accept connections on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// invocationError is what the runtime reports when the handler fails.
type invocationError struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

// invoke sends events/<eventFile> to the function and returns the
// function's result. The invocation itself must succeed: an emulator error
// or an error returned by the handler fails the test.
func (f *lambdaFunction) invoke(t *testing.T, eventFile string) []byte {
	t.Helper()
	payload, err := os.ReadFile(filepath.Join(eventsDir, eventFile))
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp, err := f.client.Post(f.url, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke %s with %s: %v", f.name, eventFile, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatalf("invoke %s with %s: read result: %v", f.name, eventFile, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke %s with %s: emulator answered %s: %s", f.name, eventFile, resp.Status, body.String())
	}
	var ie invocationError
	if json.Unmarshal(body.Bytes(), &ie) == nil && ie.ErrorType != "" {
		t.Fatalf("invoke %s with %s: function error %s: %s", f.name, eventFile, ie.ErrorType, ie.ErrorMessage)
	}
	return body.Bytes()
}
