package integration

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/connection/conntest"
	"github.com/kitefix/kitefix/shared/dynamostore"
	"github.com/kitefix/kitefix/shared/secretstore"
	"github.com/kitefix/kitefix/shared/syncbuf"
)

// motoEnv is one moto server (a subprocess, `moto_server`) with DynamoDB
// and Secrets Manager clients and a table made by dynamostore.CreateTable.
// Unlike kumo, each server starts empty.
//
// moto differences that matter here: it serves requests from one Python
// interpreter, so a burst of concurrent calls is slow (see motoRuns); and, like
// kumo, it removes a force-deleted secret at once, where Secrets Manager
// finishes the deletion in the background (secretstore retries a put for
// that, which neither fake exercises).
type motoEnv struct {
	URL      string
	DynamoDB *dynamodb.Client
	Secrets  *secretsmanager.Client
	Table    string
}

// motoStartTimeout bounds moto's start: it imports every service's models
// first, which takes a few seconds on a busy machine.
const motoStartTimeout = 60 * time.Second

// startMoto starts moto_server on a free port for the test, and stops it
// when the test ends. The test is skipped when moto_server is not on PATH.
func startMoto(t *testing.T) *motoEnv {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not on PATH (pip install 'moto[server]'): skipping the tests against moto")
	}
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	out := &syncbuf.Buffer{}
	cmd := exec.Command(bin, "-H", host, "-p", port)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("moto_server output:\n%s", out)
		}
	})

	url := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(motoStartTimeout); ; {
		select {
		case <-exited:
			t.Fatalf("moto_server exited before answering:\n%s", out)
		default:
		}
		// moto answers its own dashboard path once it serves requests.
		resp, err := client.Get(url + "/moto-api/")
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server does not answer on %s after %s: %v", addr, motoStartTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	cfg := kumoConfig(t) // static credentials, us-east-1: moto takes any
	env := &motoEnv{
		URL: url,
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(url)
		}),
		Secrets: secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
			o.BaseEndpoint = aws.String(url)
		}),
		Table: uniqueName("kitefix"),
	}
	if err := dynamostore.CreateTable(context.Background(), env.DynamoDB, env.Table); err != nil {
		t.Fatalf("create table on moto: %v", err)
	}
	return env
}

// TestMotoContracts runs the adapters' shared behaviour against moto.
func TestMotoContracts(t *testing.T) {
	env := startMoto(t)
	t.Run("records", func(t *testing.T) {
		conntest.RunRecords(t, func(t *testing.T) connection.Records {
			return dynamostore.New(env.DynamoDB, env.Table)
		})
	})
	t.Run("secrets", func(t *testing.T) {
		conntest.RunSecrets(t, func(t *testing.T) connection.Secrets {
			return secretstore.New(env.Secrets)
		})
	})
}
