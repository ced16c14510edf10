package clients

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The worker's KUBEVIRT_QPS and KUBEVIRT_BURST reach the REST config of
// every cluster client; unset, the defaults do.
func TestModuleRateLimitsReachTheClusterClients(t *testing.T) {
	for name, tc := range map[string]struct {
		opts  ModuleOptions
		qps   float32
		burst int
	}{
		"unset": {ModuleOptions{ConfigNamespace: testConfigNamespace}, DefaultQPS, DefaultBurst},
		"set":   {ModuleOptions{ConfigNamespace: testConfigNamespace, QPS: 400, Burst: 800}, 400, 800},
	} {
		t.Run(name, func(t *testing.T) {
			sup := newSupervisor(t, tokenConfig(t, "east", "https://127.0.0.1:1", "t")...)
			var cm ClientManager
			app := fxtest.New(t, fx.NopLogger,
				fx.Supply(tc.opts),
				fx.Provide(
					func() client.Client { return sup },
					func() prometheus.Registerer { return prometheus.NewRegistry() },
				),
				Module,
				fx.Populate(&cm),
			)
			app.RequireStart()
			defer app.RequireStop()

			cfg, err := cm.GetRESTConfigForConfig(t.Context(), "east")
			require.NoError(t, err)
			assert.Equal(t, tc.qps, cfg.QPS)
			assert.Equal(t, tc.burst, cfg.Burst)
		})
	}
}
