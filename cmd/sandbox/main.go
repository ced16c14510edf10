package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/machineflow/machineflow/internal/logging"
)

func main() {
	var opts options
	flag.StringVar(&opts.dir, "dir", ".run", "run directory for the kubeconfigs")
	flag.StringVar(&opts.dataDir, "data-dir", "", "directory that keeps the API servers' etcd data across restarts (one subdirectory per cluster); empty for fresh clusters on every start")
	flag.IntVar(&opts.clusters, "clusters", 2, "number of KubeVirt clusters (kubevirt-1 ... kubevirt-N)")
	flag.DurationVar(&opts.bootDelay, "boot-delay", 5*time.Second, "how long a simulated VM takes to reach Running")
	logOpts := logging.Options{Format: logging.FormatText}
	flag.StringVar(&logOpts.Format, "log-format", logOpts.Format, "json or text")
	flag.StringVar(&logOpts.Level, "log-level", "info", "debug, info, warn or error")
	flag.Parse()

	var errs []error
	if flag.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	if opts.clusters < 1 {
		errs = append(errs, fmt.Errorf("-clusters %d: must be at least 1", opts.clusters))
	}
	if opts.bootDelay < 0 {
		errs = append(errs, fmt.Errorf("-boot-delay %s: must not be negative", opts.bootDelay))
	}
	loggers, err := logging.New(os.Stderr, logOpts)
	if err = errors.Join(append(errs, err)...); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, loggers, os.Stdout); err != nil {
		loggers.Slog.Error("sandbox failed", "error", err)
		stop()
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "sandbox stopped")
}
