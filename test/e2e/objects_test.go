package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/names"
)

const (
	className   = "small"
	classCores  = 2
	classMemory = "2Gi"
	vlanID      = 42
	// nadName is the NetworkAttachmentDefinition of vlanID.
	nadName = "vlan42"
)

// createClass creates the MachineClass every Machine of the suite uses.
func createClass(c client.Client) error {
	class := &v1alpha1.MachineClass{ObjectMeta: metav1.ObjectMeta{Name: className}, Spec: v1alpha1.MachineClassSpec{
		Enabled: true, Category: "standard", MachineProviders: []v1alpha1.MachineProviderType{names.ProviderKubevirt},
		CPU:    v1alpha1.MachineClassCPUSpec{Cores: classCores, Sockets: 1, Threads: 1},
		Memory: v1alpha1.MachineClassMemorySpec{Quantity: resource.MustParse(classMemory)},
		GPU:    v1alpha1.MachineClassGPUSpec{Cores: 1}, // required by the CRD; unused
	}}
	if err := c.Create(context.Background(), class); err != nil {
		return fmt.Errorf("creating MachineClass %s: %w", className, err)
	}
	return nil
}

// namespace creates a supervisor namespace for one test, with a
// NetworkNamespace on VLAN vlanID: its Machines get a bridge network
// through a NetworkAttachmentDefinition.
func (st *suite) namespace(t *testing.T, name string) string {
	t.Helper()
	ctx := t.Context()
	c := st.env.Supervisor.Client
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	nn := &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "vlan"},
		Spec: v1alpha1.NetworkNamespaceSpec{DatacenterIdentifier: "no-west-az1", SupervisorIdentifier: "e2e"}}
	require.NoError(t, c.Create(ctx, nn))
	nn.Status.VlanID = vlanID
	require.NoError(t, c.Status().Update(ctx, nn))
	return name
}

// machine creates a Machine of class small with a 5 GB boot disk; config,
// when set, is its placement annotation.
func (st *suite) machine(t *testing.T, ns, name, config string, annotations map[string]string) {
	t.Helper()
	m := &v1alpha1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}},
		Spec: v1alpha1.MachineSpec{
			Provider:     names.ProviderKubevirt,
			MachineClass: className,
			Disks:        []v1alpha1.MachineSpecDisk{{SizeGB: 5, Boot: true}},
		},
	}
	for k, v := range annotations {
		m.Annotations[k] = v
	}
	if config != "" {
		m.Annotations[names.PlacementAnnotation] = config
	}
	require.NoError(t, st.env.Supervisor.Client.Create(t.Context(), m))
}

func (st *suite) getMachine(t *testing.T, ns, name string) *v1alpha1.Machine {
	t.Helper()
	m := &v1alpha1.Machine{}
	require.NoError(t, st.env.Supervisor.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, m))
	return m
}

// remains lists what is left of a Machine on every KubeVirt cluster.
func (st *suite) remains(t *testing.T, ns, name string) []string {
	t.Helper()
	var left []string
	for _, c := range st.env.Clusters {
		l, err := c.MachineLeftovers(t.Context(), ns, name)
		require.NoError(t, err)
		left = append(left, l...)
	}
	return left
}

// vm returns the Machine's VM on the named cluster, or nil.
func (st *suite) vm(t *testing.T, config, ns, name string) *kubevirtv1.VirtualMachine {
	t.Helper()
	cl := st.env.Cluster(config)
	require.NotNil(t, cl, "cluster %s", config)
	vm := &kubevirtv1.VirtualMachine{}
	err := cl.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, vm)
	if err != nil {
		require.True(t, client.IgnoreNotFound(err) == nil, "get VM %s/%s on %s: %v", ns, name, config, err)
		return nil
	}
	return vm
}
