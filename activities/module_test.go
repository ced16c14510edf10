package activities

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/machineflow/machineflow/clients"
)

func TestModuleProvidesActivitiesFromTheGraph(t *testing.T) {
	mock := clients.NewMockClientManager()
	supervisor := fake.NewClientBuilder().Build()
	var a *Activities
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(DefaultSettings()),
		fx.Provide(func() clients.ClientManager { return mock }, func() client.Client { return supervisor }),
		Module,
		fx.Populate(&a),
	)
	app.RequireStart()
	defer app.RequireStop()
	assert.Same(t, mock, a.clients)
	assert.Same(t, supervisor, a.supervisor)
	assert.Equal(t, DefaultSettings(), a.settings)
}

func TestModuleRejectsInvalidSettings(t *testing.T) {
	bad := DefaultSettings()
	bad.IPSource = "foo"
	var a *Activities
	app := fx.New(fx.NopLogger,
		fx.Supply(bad),
		fx.Provide(func() clients.ClientManager { return clients.NewMockClientManager() }, func() client.Client { return fake.NewClientBuilder().Build() }),
		Module,
		fx.Populate(&a),
	)
	require.Error(t, app.Err())
	assert.Contains(t, app.Err().Error(), `IP_SOURCE="foo": must be vmi or networkconfiguration`)
}
