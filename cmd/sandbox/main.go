package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var opts options
	flag.StringVar(&opts.dir, "dir", ".run", "run directory for the kubeconfigs")
	flag.IntVar(&opts.clusters, "clusters", 2, "number of KubeVirt clusters (kubevirt-1 ... kubevirt-N)")
	flag.DurationVar(&opts.bootDelay, "boot-delay", 5*time.Second, "how long a simulated VM takes to reach Running")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if flag.NArg() > 0 {
		logger.Error("unexpected arguments", "args", flag.Args())
		os.Exit(2)
	}
	if opts.clusters < 1 {
		logger.Error("flag -clusters must be at least 1", "clusters", opts.clusters)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, logger, os.Stdout); err != nil {
		logger.Error("sandbox failed", "error", err)
		stop()
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "sandbox stopped")
}
