package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/machineflow/machineflow/internal/registration"
)

func TestMachineProviderSettings(t *testing.T) {
	c, err := load(nil)
	require.NoError(t, err)
	assert.Equal(t, registration.Options{ProviderName: "kubevirt-provider"}, c.Registration, "VITISTACK_NAME is optional")

	c, err = load(map[string]string{"NAME_MACHINE_PROVIDER": "env-provider", "VITISTACK_NAME": "stack-1", "CONFIG_NAMESPACE": "secrets"},
		"--machine-provider-name", "flag-provider")
	require.NoError(t, err)
	assert.Equal(t, registration.Options{ProviderName: "flag-provider", VitistackName: "stack-1"}, c.Registration)

	var supplied registration.Options
	app := fx.New(Module(c), fx.Populate(&supplied), fx.NopLogger)
	require.NoError(t, app.Err())
	assert.Equal(t, registration.Options{ProviderName: "flag-provider", VitistackName: "stack-1", ConfigNamespace: "secrets"}, supplied,
		"the Secret namespace default is CONFIG_NAMESPACE")

	_, err = load(map[string]string{"NAME_MACHINE_PROVIDER": "Bad_Name", "VITISTACK_NAME": "bad name"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `NAME_MACHINE_PROVIDER="Bad_Name": a lowercase RFC 1123 subdomain`)
	assert.Contains(t, err.Error(), `VITISTACK_NAME="bad name": a lowercase RFC 1123 subdomain`)
}
