package clients_test

// The real-manager examples of the design document this package starts
// from, as written there: each function below holds one of its snippets,
// with the document's own identifiers and call shapes, and the tests run
// them against a fake supervisor and stand-in KubeVirt API servers.

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/names"
	mfscheme "github.com/machineflow/machineflow/internal/scheme"
)

func exampleScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s, err := mfscheme.New()
	require.NoError(t, err)
	return s
}

// The document's "KubevirtClientManager (Production)" usage.
func TestDesignDocumentUsage(t *testing.T) {
	ctx := context.Background()
	supervisorClient := clients.NewExampleSupervisor(t, "cluster-east")
	scheme := exampleScheme(t)
	machine := &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "vm1",
		Annotations: map[string]string{names.PlacementAnnotation: "cluster-east"}}}

	// Create the manager
	clientMgr := clients.NewKubevirtClientManager(
		supervisorClient,
		scheme,
		"kubevirt-configs",
	)

	// Get a client for a specific config
	remoteClient, err := clientMgr.GetClientForConfig(ctx, "cluster-east")
	require.NoError(t, err)
	require.NotNil(t, remoteClient)

	// Get client from machine
	client, configName, err := clientMgr.GetOrCreateClientFromMachine(ctx, machine)
	require.NoError(t, err)
	require.NotNil(t, client)
	require.Equal(t, "cluster-east", configName)
	require.Equal(t, "kubevirt-configs", clientMgr.GetConfigNamespace())
}

// The document's "Before" reconciler builds its manager itself.
type beforeMachineReconciler struct {
	KubevirtClientMgr *clients.KubevirtClientManager
}

func NewMachineReconcilerBefore(c client.Client, scheme *runtime.Scheme) *beforeMachineReconciler {
	clientMgr := clients.NewKubevirtClientManager(c, scheme, "default")
	return &beforeMachineReconciler{
		KubevirtClientMgr: clientMgr,
	}
}

// The document's "After" reconciler is given the interface.
type afterMachineReconciler struct {
	KubevirtClientMgr clients.ClientManager // Interface
}

func NewMachineReconcilerAfter(
	c client.Client,
	scheme *runtime.Scheme,
	clientMgr clients.ClientManager, // Injected
) *afterMachineReconciler {
	return &afterMachineReconciler{
		KubevirtClientMgr: clientMgr,
	}
}

type reconciler struct {
	clientMgr clients.ClientManager
}

// The document's "Bad - creating dependency internally".
func NewReconciler(client client.Client, scheme *runtime.Scheme) *reconciler {
	clientMgr := clients.NewKubevirtClientManager(client, scheme, "default")
	return &reconciler{clientMgr: clientMgr}
}

func TestDesignDocumentReconcilers(t *testing.T) {
	ctx := context.Background()
	c := clients.NewExampleSupervisor(t, "cluster-east")
	scheme := exampleScheme(t)

	before := NewMachineReconcilerBefore(c, scheme)
	_, err := before.KubevirtClientMgr.GetClientForConfig(ctx, "cluster-east")
	require.NoError(t, err)

	// In main.go
	namespace := "default"
	clientMgr := clients.NewKubevirtClientManager(c, scheme, namespace)
	reconciler := NewMachineReconcilerAfter(c, scheme, clientMgr)
	_, err = reconciler.KubevirtClientMgr.GetClientForConfig(ctx, "cluster-east")
	require.NoError(t, err)

	bad := NewReconciler(c, scheme)
	_, err = bad.clientMgr.GetClientForConfig(ctx, "cluster-west")
	require.ErrorIs(t, err, clients.ErrConfigNotFound)
}
