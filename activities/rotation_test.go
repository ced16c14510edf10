package activities

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
)

// rotation is a KubevirtConfig whose kubeconfig is rotated while an
// activity waits: after flipAfter reads through the old client (a whole
// look), the ClientManager hands out the new client and the old
// credentials are revoked (every call Forbidden).
type rotation struct {
	looks   atomic.Int32
	rotated atomic.Bool
	old     client.Client
	new     client.Client
}

func newRotation(t *testing.T, flipAfter int32, before, after []client.Object) (*rotation, *clients.MockClientManager) {
	t.Helper()
	s, err := scheme.New()
	require.NoError(t, err)
	r := &rotation{new: fake.NewClientBuilder().WithScheme(s).WithObjects(after...).Build()}
	revoked := func() error {
		return apierrors.NewForbidden(kubevirtv1.Resource("virtualmachines"), "", nil)
	}
	r.old = interceptor.NewClient(fake.NewClientBuilder().WithScheme(s).WithObjects(before...).Build(), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if r.rotated.Load() {
				return revoked()
			}
			err := c.Get(ctx, key, obj, opts...)
			if r.looks.Add(1) == flipAfter {
				r.rotated.Store(true)
			}
			return err
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if r.rotated.Load() {
				return revoked()
			}
			return c.Delete(ctx, obj, opts...)
		},
	})
	cm := clients.NewMockClientManager()
	cm.GetClientForConfigFunc = func(context.Context, string) (client.Client, error) {
		if r.rotated.Load() {
			return r.new, nil
		}
		return r.old, nil
	}
	return r, cm
}

// The waits of WaitForVirtualMachine and DeleteVirtualMachine outlive a
// kubeconfig rotation: they ask for the client on every look, so once the
// ClientManager has the new credentials, revoking the old ones fails
// nothing. Holding the client of their first look, they failed the Machine
// with ClusterUnauthorized.
func TestWaitsFollowAKubeconfigRotation(t *testing.T) {
	settings := DefaultSettings()
	settings.PollInitial, settings.PollMax = time.Millisecond, 5*time.Millisecond
	ref := contract.MachineRef{Namespace: "ns", Name: "vm"}
	rm := contract.RemoteMachine{KubevirtConfig: "kv", Machine: ref}
	meta := metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name, Labels: names.ManagedLabels(ref.Name)}
	run := func(cm clients.ClientManager, activity string, out any) error {
		acts, err := New(Deps{Clients: cm, Supervisor: fake.NewClientBuilder().Build(), Settings: settings})
		require.NoError(t, err)
		env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
		env.RegisterActivity(acts)
		val, err := env.ExecuteActivity(activity, rm)
		if err == nil {
			require.NoError(t, val.Get(out))
		}
		return err
	}

	t.Run("WaitForVirtualMachine", func(t *testing.T) {
		booting := &kubevirtv1.VirtualMachineInstance{ObjectMeta: meta, Status: kubevirtv1.VirtualMachineInstanceStatus{Phase: kubevirtv1.Scheduling}}
		running := &kubevirtv1.VirtualMachineInstance{ObjectMeta: meta, Status: kubevirtv1.VirtualMachineInstanceStatus{
			Phase:      kubevirtv1.Running,
			Interfaces: []kubevirtv1.VirtualMachineInstanceNetworkInterface{{Name: "default", IP: "10.100.0.7", IPs: []string{"10.100.0.7"}}},
		}}
		// A look reads the VM and its VMI: rotated after the second look.
		r, cm := newRotation(t, 4,
			[]client.Object{&kubevirtv1.VirtualMachine{ObjectMeta: meta}, booting},
			[]client.Object{&kubevirtv1.VirtualMachine{ObjectMeta: meta}, running})
		var obs contract.VMObservation
		require.NoError(t, run(cm, contract.WaitForVirtualMachineName, &obs), "after the rotation the wait goes on with the new client")
		require.True(t, r.rotated.Load())
		require.Equal(t, []string{"10.100.0.7"}, obs.IPAddresses)
	})

	t.Run("DeleteVirtualMachine", func(t *testing.T) {
		vm := &kubevirtv1.VirtualMachine{ObjectMeta: meta}
		vm.Finalizers = []string{"test/lingers"} // deleted, it stays until the rotation
		// The first read finds the VM to delete, the second sees it linger.
		r, cm := newRotation(t, 2, []client.Object{vm}, nil)
		var res contract.DeleteResult
		require.NoError(t, run(cm, contract.DeleteVirtualMachineName, &res), "after the rotation the wait goes on with the new client")
		require.True(t, r.rotated.Load())
		require.Equal(t, []string{"VirtualMachine ns/vm on kv"}, res.Deleted)
	})
}
