package stack

import (
	"context"
	"errors"
	"fmt"

	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/names"
)

// The objects every Machine of a stack can use: Start creates the
// MachineClass; Namespace creates a namespace whose NetworkNamespace is on
// VLANID, so that Machines get a bridge network through the
// NetworkAttachmentDefinition NADName.
const (
	ClassName   = "small"
	ClassCores  = 2
	ClassMemory = "2Gi"
	VLANID      = 42
	NADName     = "vlan42"
)

func createClass(ctx context.Context, c client.Client) error {
	class := &v1alpha1.MachineClass{ObjectMeta: metav1.ObjectMeta{Name: ClassName}, Spec: v1alpha1.MachineClassSpec{
		Enabled: true, Category: "standard", MachineProviders: []v1alpha1.MachineProviderType{names.ProviderKubevirt},
		CPU:    v1alpha1.MachineClassCPUSpec{Cores: ClassCores, Sockets: 1, Threads: 1},
		Memory: v1alpha1.MachineClassMemorySpec{Quantity: resource.MustParse(ClassMemory)},
		GPU:    v1alpha1.MachineClassGPUSpec{Cores: 1}, // required by the CRD; unused
	}}
	if err := c.Create(ctx, class); err != nil {
		return fmt.Errorf("creating MachineClass %s: %w", ClassName, err)
	}
	return nil
}

// Namespace creates a supervisor namespace with a NetworkNamespace on
// VLANID.
func (s *Stack) Namespace(ctx context.Context, name string) error {
	c := s.Env.Supervisor.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	nn := &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "vlan"},
		Spec: v1alpha1.NetworkNamespaceSpec{DatacenterIdentifier: "no-west-az1", SupervisorIdentifier: "stack"}}
	if err := c.Create(ctx, nn); err != nil {
		return fmt.Errorf("creating NetworkNamespace %s/%s: %w", name, nn.Name, err)
	}
	nn.Status.VlanID = VLANID
	if err := c.Status().Update(ctx, nn); err != nil {
		return fmt.Errorf("setting the VLAN of NetworkNamespace %s/%s: %w", name, nn.Name, err)
	}
	return nil
}

// NewMachine is a Machine of class ClassName with a 5 GB boot disk, not
// yet created.
func NewMachine(namespace, name string) *v1alpha1.Machine {
	return &v1alpha1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: map[string]string{}},
		Spec: v1alpha1.MachineSpec{
			Provider:     names.ProviderKubevirt,
			MachineClass: ClassName,
			Disks:        []v1alpha1.MachineSpecDisk{{SizeGB: 5, Boot: true}},
		},
	}
}

// Leftovers lists what is left of a Machine on every KubeVirt cluster:
// what testenv.Cluster.MachineLeftovers lists (VMs, VMIs, PVCs, NADs and
// cloud-init Secrets), each named with its cluster.
func (s *Stack) Leftovers(ctx context.Context, namespace, name string) ([]string, error) {
	var left []string
	var errs []error
	for _, c := range s.Env.Clusters {
		l, err := c.MachineLeftovers(ctx, namespace, name)
		errs = append(errs, err)
		left = append(left, l...)
	}
	return left, errors.Join(errs...)
}
