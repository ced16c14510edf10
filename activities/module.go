package activities

import (
	"go.uber.org/fx"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/clients"
)

// ModuleParams are the graph's inputs of Module: the (decorated)
// ClientManager, the supervisor's uncached client and the Settings.
type ModuleParams struct {
	fx.In

	Clients    clients.ClientManager
	Supervisor client.Client
	Settings   Settings
}

// Module provides *Activities built with New from the graph.
var Module = fx.Module("activities", fx.Provide(func(p ModuleParams) (*Activities, error) {
	return New(Deps{Clients: p.Clients, Supervisor: p.Supervisor, Settings: p.Settings})
}))
