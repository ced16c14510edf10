// Command worker runs machineflow's Temporal worker: the ProvisionMachine,
// DeprovisionMachine, ClusterHealthCheck and EjectISO workflows and their
// activities. With a real supervisor it also ensures, in the background,
// the vitistack MachineProvider named by NAME_MACHINE_PROVIDER
// (internal/registration).
// It is configured by flags and environment variables (worker -h, and the
// README's "Worker configuration"); an invalid setting stops it with one
// line on standard error and exit status 2. SIGTERM or SIGINT stop it
// gracefully with status 0.
package main

import (
	"os"
	"time"

	"go.uber.org/fx"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/config"
	"github.com/machineflow/machineflow/internal/config/check"
	"github.com/machineflow/machineflow/internal/logging"
	"github.com/machineflow/machineflow/internal/observability"
	"github.com/machineflow/machineflow/internal/registration"
	"github.com/machineflow/machineflow/internal/sim/mockmode"
	"github.com/machineflow/machineflow/internal/supervisor"
	"github.com/machineflow/machineflow/internal/temporalclient"
	"github.com/machineflow/machineflow/internal/worker"
)

func main() {
	cfg, err := config.Load(os.Args[1:], os.LookupEnv, os.Stderr)
	if err != nil {
		os.Exit(check.ExitStatus(os.Stderr, err))
	}
	fx.New(app(cfg)).Run()
}

// app composes the modules; cluster access is the one part that differs
// between real and mock mode. Only a real supervisor gets the worker's
// MachineProvider registered.
func app(cfg config.Config) fx.Option {
	clusters := fx.Options(supervisor.Module, registration.Module)
	if cfg.ClientManager == config.ClientManagerMock {
		clusters = mockmode.Module
	}
	return fx.Options(
		config.Module(cfg),
		logging.Module,
		fx.WithLogger(logging.FxLogger),
		observability.Module,
		temporalclient.Module,
		clusters,
		clients.Module,
		activities.Module,
		worker.Module,
		// Stopping waits up to WORKER_STOP_TIMEOUT for running activities;
		// fx must not give up before.
		fx.StopTimeout(cfg.StopTimeout+stopMargin),
	)
}

// stopMargin is fx's stop time on top of the worker's, for closing the
// Temporal client and the metrics server.
const stopMargin = 5 * time.Second
