package temporalclient

import (
	"context"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.uber.org/fx"
)

// Module provides a connected client.Client from the Options in the
// graph, and closes it on stop. A log.Logger and a client.MetricsHandler
// are used when the graph has them.
var Module = fx.Module("temporalclient", fx.Provide(newClient))

// Params are the inputs of the client in the fx graph.
type Params struct {
	fx.In

	Options Options
	Logger  log.Logger            `optional:"true"`
	Metrics client.MetricsHandler `optional:"true"`
}

func newClient(lc fx.Lifecycle, p Params) (client.Client, error) {
	c, err := Dial(context.Background(), p.Options, p.Logger, p.Metrics)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(c.Close))
	return c, nil
}
