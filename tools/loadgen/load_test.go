package main

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadInvariants runs a small load (300 deliveries over 20 builds) on
// `kitefix serve`: every bad delivery refused, every failed job analyzed
// exactly once, its log read once, nothing left in the queue. Figures are
// for `make load`; this checks only the invariants.
func TestLoadInvariants(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kitefix")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kitefix")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kitefix: %v\n%s", err, out)
	}
	cfg := Config{
		Binary: bin, Deliveries: 300, Builds: 20, FailedBuilds: 3,
		DuplicatePct: 10, BadSignaturePct: 5, UnknownIDPct: 5,
		Concurrency: 16, Timeout: 60 * time.Second, Seed: uint64(time.Now().UnixNano()), Log: io.Discard,
	}
	t.Logf("seed %d", cfg.Seed)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, rep)
	}
	if got, want := rep.ByStatus[http.StatusUnauthorized], 30; got != want {
		t.Errorf("%d deliveries refused with 401; want the %d bad ones", got, want)
	}
	if rep.FailedJobs != 3 || rep.Deliveries != 300 {
		t.Errorf("report %+v; want 300 deliveries and 3 failed jobs", rep)
	}
}
