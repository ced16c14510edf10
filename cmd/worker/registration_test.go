package main

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/machineflow/machineflow/internal/config"
	"github.com/machineflow/machineflow/internal/registration"
)

// TestMachineProviderRegistrationOnlyInRealMode: the graph has a
// Registrar (and so registers at start) with a real supervisor only.
func TestMachineProviderRegistrationOnlyInRealMode(t *testing.T) {
	needsRegistrar := fx.Invoke(func(*registration.Registrar) {})
	realCfg := loadConfig(t, map[string]string{"CLIENT_MANAGER": config.ClientManagerReal})
	require.NoError(t, fx.ValidateApp(app(realCfg), needsRegistrar))
	mockCfg := loadConfig(t, map[string]string{"CLIENT_MANAGER": config.ClientManagerMock})
	err := fx.ValidateApp(app(mockCfg), needsRegistrar)
	require.ErrorContains(t, err, "missing type: *registration.Registrar")
}
