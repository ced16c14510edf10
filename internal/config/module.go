package config

import (
	"go.uber.org/fx"

	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/registration"
	"github.com/machineflow/machineflow/internal/worker"
)

// Module supplies c and each module's part of it, so that modules depend on
// their own options type rather than on this package.
func Module(c Config) fx.Option {
	return fx.Module("config", fx.Supply(
		c,
		c.Temporal,
		c.Supervisor,
		c.Activities,
		c.Metrics,
		c.Log,
		worker.Options{TaskQueue: c.TaskQueue, StopTimeout: c.StopTimeout, MaxTaskPollers: c.MaxTaskPollers},
		registration.Options{
			ProviderName:    c.Registration.ProviderName,
			VitistackName:   c.Registration.VitistackName,
			ConfigNamespace: c.ConfigNamespace,
		},
		clients.ModuleOptions{
			ConfigNamespace: c.ConfigNamespace,
			DefaultConfig:   c.DefaultKubevirtConfig,
			Resilience:      c.Resilience,
			QPS:             c.KubevirtQPS,
			Burst:           c.KubevirtBurst,
		},
	))
}
