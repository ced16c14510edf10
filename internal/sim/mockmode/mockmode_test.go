package mockmode

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/names"
)

func TestSeed(t *testing.T) {
	e, err := New(clients.ModuleOptions{ConfigNamespace: "machineflow-system"}, logr.Discard())
	require.NoError(t, err)
	ctx := context.Background()

	var machines v1alpha1.MachineList
	require.NoError(t, e.Supervisor.List(ctx, &machines, client.InNamespace(Namespace)))
	var got []string
	for _, m := range machines.Items {
		got = append(got, m.Name)
	}
	assert.ElementsMatch(t, Machines, got)

	configs, err := e.Manager.ListKubevirtConfigs(ctx)
	require.NoError(t, err)
	require.Len(t, configs, 2)
	assert.Equal(t, "machineflow-system", configs[0].Spec.SecretNamespace)
	var onSupervisor v1alpha1.KubevirtConfigList
	require.NoError(t, e.Supervisor.List(ctx, &onSupervisor))
	assert.Len(t, onSupervisor.Items, 2, "the supervisor has the configs the manager serves")

	var demo1 v1alpha1.Machine
	require.NoError(t, e.Supervisor.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: "demo-1"}, &demo1))
	_, name, err := e.Manager.GetOrCreateClientFromMachine(ctx, &demo1)
	require.NoError(t, err)
	assert.Equal(t, ConfigA, name)
	var demo3 v1alpha1.Machine
	require.NoError(t, e.Supervisor.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: "demo-3"}, &demo3))
	_, name, err = e.Manager.GetOrCreateClientFromMachine(ctx, &demo3)
	require.NoError(t, err)
	assert.Equal(t, ConfigB, name)
	assert.Equal(t, "machineflow-system", e.Manager.GetConfigNamespace())

	// Status is a subresource, as on a real API server.
	demo1.Status.Phase = "Provisioning"
	require.NoError(t, e.Supervisor.Status().Update(ctx, &demo1))
}

func TestDefaultConfigMustBeADemoConfig(t *testing.T) {
	e, err := New(clients.ModuleOptions{DefaultConfig: ConfigB}, logr.Discard())
	require.NoError(t, err)
	assert.Equal(t, ConfigB, e.Manager.DefaultConfig)

	_, err = New(clients.ModuleOptions{DefaultConfig: "prod"}, logr.Discard())
	require.EqualError(t, err, `DEFAULT_KUBEVIRT_CONFIG="prod": mock mode has only demo-a and demo-b`)
}

func TestSimulatorsBootVMs(t *testing.T) {
	e, err := New(clients.ModuleOptions{}, logr.Discard())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	cluster := e.Clusters[ConfigB]
	vm := &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: "vm", Labels: names.ManagedLabels("vm")},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(kubevirtv1.RunStrategyAlways),
			Template:    &kubevirtv1.VirtualMachineInstanceTemplateSpec{},
		},
	}
	require.NoError(t, cluster.Create(ctx, vm))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var vmi kubevirtv1.VirtualMachineInstance
		require.NoError(c, cluster.Get(ctx, client.ObjectKeyFromObject(vm), &vmi))
		assert.Equal(c, kubevirtv1.Running, vmi.Status.Phase)
		require.NotEmpty(c, vmi.Status.Interfaces)
		assert.Contains(c, vmi.Status.Interfaces[0].IP, "10.101.", "demo-b's address pool")
	}, 30*time.Second, 100*time.Millisecond)
}
