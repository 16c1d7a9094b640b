// Command kitefix runs kitefix locally: `serve` runs the whole stack in one
// process on embedded storage, `analyze` explains a raw CI log offline, and
// `verify` checks a Buildkite API access token.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: kitefix <command> [flags]

commands:
  serve    run the local stack (settings page, API, webhooks) on embedded storage
  analyze  analyze one raw CI log offline: kitefix analyze [--json] [FILE|-]
  verify   check a Buildkite API access token: kitefix verify [--token-file F]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr, getenv)
	case "analyze":
		return runAnalyze(ctx, args[1:], stdin, stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], stdout, stderr, getenv)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "kitefix: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
