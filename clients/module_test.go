package clients

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// consumer stands for any module outside clients (activities, ...): it
// must receive the decorated manager.
type consumer struct{ cm ClientManager }

func TestModuleDecoratesTheMockForEveryConsumer(t *testing.T) {
	reg := prometheus.NewRegistry()
	mock := NewMockClientManager()
	mock.AddMockedClient("a", fake.NewClientBuilder().WithScheme(testScheme(t)).Build())
	mock.GetClientError = unreachable("a")
	mock.ConfigNamespace = "mock-ns"
	var got consumer
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(ModuleOptions{Resilience: ResilienceOptions{Attempts: 2, RetryInitial: 1, RetryMax: 1}}, mock),
		fx.Provide(
			func() client.Client { return fake.NewClientBuilder().WithScheme(testScheme(t)).Build() },
			func() prometheus.Registerer { return reg },
		),
		Module,
		fx.Module("consumer", fx.Provide(func(cm ClientManager) consumer { return consumer{cm} }), fx.Populate(&got)),
	)
	app.RequireStart()
	defer app.RequireStop()

	metrics, ok := got.cm.(*MetricsClientManager)
	require.True(t, ok, "outermost decorator is the metrics one, got %T", got.cm)
	_, ok = metrics.next.(*ResilientClientManager)
	require.True(t, ok, "inside it the resilient one, got %T", metrics.next)

	_, err := got.cm.GetClientForConfig(context.Background(), "a")
	require.ErrorIs(t, err, ErrClusterUnreachable)
	assert.Len(t, mock.Snapshot().GetClient, 2, "the resilient decorator retried once")
	assert.Equal(t, 1.0, testutil.ToFloat64(metrics.calls.WithLabelValues("GetClientForConfig", "a")), "one call as the caller saw it")
	assert.Equal(t, "mock-ns", got.cm.GetConfigNamespace())
}

func TestModuleBuildsTheRealManagerWithoutMock(t *testing.T) {
	var cm ClientManager
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(ModuleOptions{ConfigNamespace: "machineflow-system", DefaultConfig: "a"}),
		fx.Provide(
			func() client.Client { return fake.NewClientBuilder().WithScheme(testScheme(t)).Build() },
			func() prometheus.Registerer { return prometheus.NewRegistry() },
		),
		Module,
		fx.Populate(&cm),
	)
	app.RequireStart()
	defer app.RequireStop()
	inner := cm.(*MetricsClientManager).next.(*ResilientClientManager).next
	real, ok := inner.(*KubevirtClientManager)
	require.True(t, ok, "got %T", inner)
	assert.Equal(t, "machineflow-system", real.GetConfigNamespace())
	_, err := cm.GetClientForConfig(context.Background(), "a")
	require.ErrorIs(t, err, ErrConfigNotFound, "the supervisor has no KubevirtConfig a")
}

// A bad setting is a start-up error of the process that names it, never a
// panic: the constructor's panics are for programmer errors only.
func TestModuleRefusesBadSettingsAtStartUp(t *testing.T) {
	for name, tc := range map[string]struct {
		opts ModuleOptions
		want string
	}{
		"negative QPS":    {ModuleOptions{ConfigNamespace: "machineflow-system", QPS: -1}, "QPS must be positive"},
		"negative burst":  {ModuleOptions{ConfigNamespace: "machineflow-system", Burst: -5}, "burst must be positive"},
		"empty namespace": {ModuleOptions{}, "config namespace is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			var cm ClientManager
			app := fx.New(fx.NopLogger,
				fx.Supply(tc.opts),
				fx.Provide(
					func() client.Client { return fake.NewClientBuilder().WithScheme(testScheme(t)).Build() },
					func() prometheus.Registerer { return prometheus.NewRegistry() },
				),
				Module,
				fx.Populate(&cm),
			)
			require.ErrorContains(t, app.Err(), "KubevirtClientManager: "+tc.want)
			require.Nil(t, cm)
		})
	}
}
