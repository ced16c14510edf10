package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/machineflow/machineflow/internal/harness/runner/manifest"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testenv/simulated"
	"github.com/machineflow/machineflow/internal/logging"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
)

//go:embed seed.yaml
var seedYAML []byte

type options struct {
	dir       string
	dataDir   string
	clusters  int
	bootDelay time.Duration
}

// run starts the clusters, seeds the supervisor, runs the simulators and
// publishes the kubeconfigs, then blocks until ctx is done or a simulator
// fails. Everything it started is stopped before it returns.
func run(ctx context.Context, opts options, loggers logging.Loggers, out io.Writer) (err error) {
	logger := loggers.Slog
	seed, err := manifest.Decode(bytes.NewReader(seedYAML), "seed.yaml")
	if err != nil {
		return err
	}
	files, err := newKubeconfigFiles(opts.dir, opts.clusters)
	if err != nil {
		return err
	}
	// A file left by a sandbox that was killed would tell a reader we are
	// ready before we are.
	if err := files.removeAll(); err != nil {
		return err
	}

	logger.Info("starting API servers", "clusters", opts.clusters, "dataDir", opts.dataDir)
	started := time.Now()
	env, err := testenv.Start(ctx, testenv.Options{Clusters: opts.clusters, DataDir: opts.dataDir})
	if err != nil {
		return fmt.Errorf("starting the API servers: %w", err)
	}
	defer func() {
		logger.Info("stopping API servers")
		err = errors.Join(err, env.Stop())
	}()
	logger.Info("API servers started", "seconds", time.Since(started).Round(100*time.Millisecond).Seconds())

	if err := manifest.Apply(ctx, env.Supervisor.Client, seed); err != nil {
		return fmt.Errorf("seeding the supervisor: %w", err)
	}
	for _, o := range seed {
		logger.Info("applied", "object", o.String())
	}

	// kubevirt-1's addresses are 10.101.x.x, kubevirt-2's 10.102.x.x, ...
	sims, err := kubevirtsim.NewFleet(simulated.Targets(env), kubevirtsim.Options{AddressPool: "10.101.0.0/16", BootDelay: opts.bootDelay, Logger: loggers.Logr})
	if err != nil {
		return fmt.Errorf("simulators: %w", err)
	}
	simCtx, stopSims := context.WithCancel(ctx)
	// gctx also ends when a simulator fails, which stops the sandbox.
	g, gctx := errgroup.WithContext(simCtx)
	g.Go(func() error { return sims.Run(gctx) })
	defer func() {
		// Stop the simulators before the API servers stop under them.
		stopSims()
		err = errors.Join(err, g.Wait())
	}()

	if err := files.write(env); err != nil {
		return errors.Join(err, files.removeAll())
	}
	defer func() { err = errors.Join(err, files.removeAll()) }()

	clusters := make([]string, len(env.Clusters))
	for i, c := range env.Clusters {
		clusters[i] = fmt.Sprintf("%s (%s)", c.Name, c.Config.Host)
	}
	fmt.Fprintf(out, "sandbox ready: supervisor %s, KubeVirt clusters %s, config namespace %s; kubeconfig %s\n",
		env.Supervisor.Config.Host, strings.Join(clusters, ", "), env.ConfigNamespace, files.supervisor())

	<-gctx.Done()
	logger.Info("stopping")
	return nil
}
