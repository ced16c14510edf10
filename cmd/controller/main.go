// Command controller runs machineflow's Machine controller: a
// controller-runtime manager (leader election, /healthz and /readyz,
// /metrics) whose reconciler starts the ProvisionMachine and
// DeprovisionMachine workflows for Machines with spec.provider "" or
// "kubevirt" (package controller). It is configured by flags and
// environment variables (controller -h, and the README's "Controller"
// section); an invalid setting stops it with one line on standard error
// and exit status 2. SIGTERM or SIGINT stop it gracefully with status 0.
package main

import (
	"os"
	"time"

	"go.uber.org/fx"

	"github.com/machineflow/machineflow/controller"
	"github.com/machineflow/machineflow/internal/config/check"
	"github.com/machineflow/machineflow/internal/logging"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

func main() {
	cfg, err := load(os.Args[1:], os.LookupEnv, os.Stderr)
	if err != nil {
		os.Exit(check.ExitStatus(os.Stderr, err))
	}
	fx.New(app(cfg)).Run()
}

func app(cfg config) fx.Option {
	return fx.Options(
		fx.Supply(cfg.Temporal, cfg.Supervisor, cfg.Log, cfg.Controller, cfg.Manager),
		logging.Module,
		fx.WithLogger(logging.FxLogger),
		temporalclient.Module,
		managerModule,
		controller.Module,
		fx.StopTimeout(cfg.Manager.StopTimeout+stopMargin),
	)
}

// stopMargin is fx's stop time on top of the manager's, for releasing the
// lease and closing the Temporal client.
const stopMargin = 5 * time.Second
