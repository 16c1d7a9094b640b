package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kitefix/kitefix/shared/bkfake"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/localguard"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/stack"
	"github.com/kitefix/kitefix/web"
)

// dataDefault is where `kitefix serve` keeps its data unless told.
const dataDefault = ".kitefix"

// runServe implements `kitefix serve [--addr 127.0.0.1:8080] [--data DIR] [--reset]
// [--reconcile-every 15m]`.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	data := fs.String("data", dataDefault, "directory of the embedded database and its key file")
	reset := fs.Bool("reset", false, "start over: move the data directory aside to DIR.broken-<time> (nothing is deleted) and begin with empty data")
	reconcileEvery := fs.Duration("reconcile-every", 15*time.Minute, "how often to look for failed jobs no webhook brought (0: never)")
	demoMode := fs.Bool("demo", false, "run against a simulated Buildkite organization in this process: it connects itself and sends failing builds "+
		"(data in a fresh temporary directory unless --data is given; no network needed)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kitefix serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "kitefix serve: %v\n", err)
		return 2
	}
	log := cfg.Logger(stderr)
	var demo *bkfake.Demo
	if *demoMode {
		cleanup, err := startDemo(fs, data, &cfg, &demo, log)
		if err != nil {
			fmt.Fprintf(stderr, "kitefix serve: demo: %v\n", err)
			return 1
		}
		defer cleanup()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "kitefix serve: listen: %v\n", err)
		return 1
	}
	url := "http://" + ln.Addr().String()
	webhookBaseSet := cfg.WebhookBaseURL != ""
	if !webhookBaseSet {
		cfg.WebhookBaseURL = url
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		log.Warn("serving beyond loopback: the local settings API has no sign-in", "addr", ln.Addr().String())
	}
	if *reset {
		moved, err := localstore.MoveAside(*data, time.Now())
		if err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "kitefix serve: reset: %v\n", err)
			return 1
		}
		if moved != "" {
			fmt.Fprintf(stderr, "kitefix serve: moved %s to %s; starting with empty data\n", *data, moved)
		}
	}
	var page http.Handler = web.Handler()
	if demo != nil {
		page = demo.Page(page)
	}
	local, err := stack.OpenLocal(*data, cfg, log, page)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "kitefix serve: %v\n", err)
		if errors.Is(err, localstore.ErrDamaged) {
			again := "kitefix serve --reset"
			if *data != dataDefault {
				again += " --data " + *data
			}
			fmt.Fprintf(stderr, "kitefix serve: or start over with `%s`: it moves %s aside (deleting nothing), and you connect Buildkite again\n", again, *data)
		}
		return 1
	}
	defer local.Close()

	// The analyze worker stops after the server: in-flight jobs finish or
	// go back to the durable queue before the store closes.
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		local.RunWorker(workerCtx, *reconcileEvery)
	}()
	defer func() {
		stopWorker()
		<-workerDone
	}()

	// Only this server's own page, at its own address, may use it: any page
	// the browser opens can send requests to 127.0.0.1.
	guarded, err := localguard.New(localguard.Config{Addr: ln.Addr().String(), WebhookBaseURL: cfg.WebhookBaseURL, Log: log}, local.Handler)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "kitefix serve: %v\n", err)
		return 1
	}
	srv := &http.Server{
		Handler:           guarded,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "kitefix serving on %s (data in %s)\n", url, *data)
	if demo != nil {
		fmt.Fprintf(stdout, "Demo: open %s — a simulated Buildkite organization at %s sends its failing builds here.\n", url, demo.URL())
	} else if webhookBaseSet {
		fmt.Fprintf(stdout, "Buildkite webhooks: %s/hooks/<webhook id> (WEBHOOK_BASE_URL)\n", cfg.WebhookBaseURL)
	} else {
		fmt.Fprintf(stdout, "Buildkite webhooks: %s/hooks/<webhook id> is reachable only from this machine;\n"+
			"  Buildkite can reach it only through a tunnel: start one to %s and restart with\n"+
			"  WEBHOOK_BASE_URL set to the tunnel's https URL.\n", url, url)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if demo != nil {
		demoDone := make(chan struct{})
		go func() {
			defer close(demoDone)
			if err := demo.Run(ctx, url, stdout); err != nil {
				fmt.Fprintf(stderr, "kitefix serve: demo: %v\n", err)
			}
		}()
		defer func() { <-demoDone }()
	}
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "kitefix serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "kitefix serve: shut down: %v\n", err)
		return 1
	}
	return 0
}

// startDemo starts the simulated Buildkite organization of --demo and
// points cfg at it; without --data the data goes to a fresh temporary
// directory, removed by the returned cleanup, so a demo never mixes with a
// real connection's data.
func startDemo(fs *flag.FlagSet, data *string, cfg *config.Config, demo **bkfake.Demo, log *slog.Logger) (func(), error) {
	dataSet := false
	fs.Visit(func(f *flag.Flag) { dataSet = dataSet || f.Name == "data" })
	removeData := func() {}
	if !dataSet {
		dir, err := os.MkdirTemp("", "kitefix-demo-")
		if err != nil {
			return nil, fmt.Errorf("make a data directory: %w", err)
		}
		// A directory inside it, so that whatever --reset moves aside
		// goes with it.
		*data = filepath.Join(dir, "data")
		removeData = func() { _ = os.RemoveAll(dir) }
	}
	d, err := bkfake.StartDemo(bkfake.DemoConfig{Log: log})
	if err != nil {
		removeData()
		return nil, err
	}
	*demo = d
	cfg.BuildkiteAPIURL = d.URL()
	cfg.WebhookBaseURL = "" // the demo's webhooks come from this machine
	return func() {
		_ = d.Close()
		removeData()
	}, nil
}
