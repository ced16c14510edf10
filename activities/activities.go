package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/clients"
)

// Activities holds the dependencies of every machine lifecycle activity.
// Register it with worker.RegisterActivity(a): each exported method is an
// activity named after the method (the *Name constants in types.go).
type Activities struct {
	clients    clients.ClientManager
	supervisor client.Client
	settings   Settings
	now        func() time.Time
	http       *http.Client
}

// Deps are the injected dependencies of Activities.
type Deps struct {
	// Clients hands out the KubeVirt clusters' clients.
	Clients clients.ClientManager
	// Supervisor is the client of the cluster holding Machines. It must read
	// through to the API server (no cache): activities check what exists
	// right before they create it.
	Supervisor client.Client
	Settings   Settings
	// Clock defaults to time.Now.
	Clock func() time.Time
	// HTTPClient sizes ISO images with a HEAD request; defaults to a client
	// with Settings.ISOHeadTimeout.
	HTTPClient *http.Client
}

// New validates the dependencies and returns the activities.
func New(d Deps) (*Activities, error) {
	var errs []error
	if d.Clients == nil {
		errs = append(errs, errors.New("Deps.Clients is nil"))
	}
	if d.Supervisor == nil {
		errs = append(errs, errors.New("Deps.Supervisor is nil"))
	}
	if err := d.Settings.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("activities: %w", err)
	}
	a := &Activities{clients: d.Clients, supervisor: d.Supervisor, settings: d.Settings, now: d.Clock, http: d.HTTPClient}
	if a.now == nil {
		a.now = time.Now
	}
	if a.http == nil {
		a.http = &http.Client{Timeout: d.Settings.ISOHeadTimeout}
	}
	return a, nil
}

// remote returns the client of a KubevirtConfig, with errors classified.
func (a *Activities) remote(ctx context.Context, config string) (client.Client, error) {
	if config == "" {
		return nil, newAppError(contract.ErrTypeConfigNotFound, true, nil, "no KubevirtConfig given")
	}
	c, err := a.clients.GetClientForConfig(ctx, config)
	if err != nil {
		return nil, classify(err, fmt.Sprintf("client for KubevirtConfig %q", config))
	}
	return c, nil
}
