// Command run is `make run`: it starts the Temporal dev server, the sandbox,
// the worker and the controller, schedules the cluster health check, applies
// the example Machines and prints what to try; Ctrl-C stops everything in
// reverse order. See internal/harness/runner.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/machineflow/machineflow/internal/harness/runner"
)

func main() {
	opts := runner.DefaultOptions()
	examples := strings.Join(opts.Examples, ",")
	flag.StringVar(&opts.Dir, "dir", opts.Dir, "run directory (Temporal's database, the clusters' etcd data, kubeconfigs); delete it to start afresh")
	flag.StringVar(&opts.BinDir, "bin", opts.BinDir, "directory with the worker, controller, starter and sandbox binaries")
	flag.StringVar(&opts.TemporalCLI, "temporal-cli", opts.TemporalCLI, "the temporal CLI")
	flag.IntVar(&opts.TemporalPort, "temporal-port", opts.TemporalPort, "Temporal frontend port")
	flag.IntVar(&opts.UIPort, "ui-port", opts.UIPort, "Temporal web UI port")
	flag.BoolVar(&opts.Headless, "headless", opts.Headless, "run Temporal without its web UI")
	flag.StringVar(&examples, "examples", examples, "comma-separated manifest files or directories to apply once everything runs; empty for none")
	flag.DurationVar(&opts.BootDelay, "boot-delay", opts.BootDelay, "how long a simulated VM takes to boot")
	flag.DurationVar(&opts.StartTimeout, "start-timeout", opts.StartTimeout, "limit for each start-up step")
	flag.DurationVar(&opts.StopGrace, "stop-grace", opts.StopGrace, "how long each process may take to stop before it is killed")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "run: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	opts.Examples = nil
	for _, e := range strings.Split(examples, ",") {
		if e = strings.TrimSpace(e); e != "" {
			opts.Examples = append(opts.Examples, e)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default action is back: a second Ctrl-C
	// kills the runner, and the children get their parent-death signal.
	context.AfterFunc(ctx, stop)
	if err := runner.Run(ctx, opts); err != nil {
		fmt.Fprintf(os.Stderr, "run: %v\n", err)
		os.Exit(1)
	}
}
