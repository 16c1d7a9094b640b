// Command loadgen puts `kitefix serve` under webhook load against a
// loopback fake Buildkite: signed deliveries over many builds, exact
// duplicates, bad signatures and unknown webhook ids, in random order. It
// checks that every bad delivery is refused, every failed job analyzed
// exactly once and nothing is left in the queue, and reports deliveries
// per second, webhook latency, the time until the last analysis, the
// Buildkite requests per analyzed job and the server's peak memory.
//
// Everything runs on loopback and the run is bounded by -timeout. The
// analysis side is paced by the token's request budget (50 a minute), so
// -failed-builds sets how long the analyses take, not the webhook load.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

func main() {
	cfg := Config{Log: os.Stderr}
	flag.StringVar(&cfg.Binary, "kitefix", "", "kitefix binary to run (default: build ./cmd/kitefix)")
	flag.IntVar(&cfg.Deliveries, "deliveries", 10_000, "deliveries to send")
	flag.IntVar(&cfg.Builds, "builds", 500, "builds they cover")
	flag.IntVar(&cfg.FailedBuilds, "failed-builds", 8, "builds with a failed job")
	flag.IntVar(&cfg.DuplicatePct, "duplicates", 10, "percent of deliveries that are exact duplicates")
	flag.IntVar(&cfg.BadSignaturePct, "bad-signatures", 5, "percent with a bad signature")
	flag.IntVar(&cfg.UnknownIDPct, "unknown-ids", 5, "percent for an unknown webhook id")
	flag.IntVar(&cfg.Concurrency, "concurrency", 32, "deliveries in flight at once")
	flag.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	flag.Parse()
	cfg.Seed = *seed
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(cfg Config) error {
	if cfg.Binary == "" {
		dir, err := os.MkdirTemp("", "loadgen")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.Binary = filepath.Join(dir, "kitefix")
		if out, err := exec.Command("go", "build", "-o", cfg.Binary, "./cmd/kitefix").CombinedOutput(); err != nil {
			return fmt.Errorf("build kitefix: %v\n%s", err, out)
		}
	}
	fmt.Fprintf(cfg.Log, "seed %d\n", cfg.Seed)
	rep, err := Run(context.Background(), cfg)
	fmt.Println(rep)
	return err
}
