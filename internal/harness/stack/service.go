package stack

import (
	"os"
	"path/filepath"
	"slices"

	"github.com/machineflow/machineflow/internal/harness/services"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

// commonEnv is what the worker and the controller both need, as a
// Deployment would give it.
func (s *Stack) commonEnv() []string {
	return []string{
		"HOME=" + s.Dir,
		"PATH=" + os.Getenv("PATH"),
		"TEMPORAL_ADDRESS=" + s.TemporalAddress(),
		"TEMPORAL_NAMESPACE=" + temporalclient.DefaultNamespace,
		"KUBECONFIG=" + s.Kubeconfig,
		"LOG_FORMAT=json",
	}
}

func (s *Stack) newWorker(name string, extraEnv []string) (*services.Service, error) {
	env := slices.Concat(s.commonEnv(), []string{
		"CLIENT_MANAGER=real",
		"CONFIG_NAMESPACE=" + s.Env.ConfigNamespace,
		// Registers a MachineProvider made from the first cluster's
		// KubevirtConfig, as a production worker does at start-up.
		"NAME_MACHINE_PROVIDER=" + s.Env.Clusters[0].Name,
	}, s.opts.WorkerEnv, extraEnv)
	return services.Worker(name, s.Bin.Worker, env, services.Options{LogPath: filepath.Join(s.Dir, name+".log")})
}

func (s *Stack) newController() (*services.Service, error) {
	env := slices.Concat(s.commonEnv(), []string{
		// One instance: a lease would only delay a restarted controller
		// by the lease duration.
		"LEADER_ELECT=false",
	}, s.opts.ControllerEnv)
	return services.Controller(s.Bin.Controller, env, services.Options{LogPath: filepath.Join(s.Dir, "controller.log")})
}
