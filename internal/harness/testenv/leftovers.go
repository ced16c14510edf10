package testenv

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/names"
)

// MachineLeftovers names what is left on c of the Machine namespace/machine:
// the VirtualMachines, VirtualMachineInstances, PersistentVolumeClaims,
// NetworkAttachmentDefinitions and (cloud-init) Secrets in namespace that
// carry machineflow's labels for it, each as "<Kind> <namespace>/<name> on
// <cluster>". Suites assert it is empty once a deprovision or a
// compensation has run.
//
// A PVC being deleted counts as gone: envtest runs no controller-manager to
// remove its pvc-protection finalizer, which a real cluster does once no
// pod uses the claim. A NAD is shared by the Machines on its VLAN and
// labelled with the one that created it, so it is that Machine's leftover.
func (c *Cluster) MachineLeftovers(ctx context.Context, namespace, machine string) ([]string, error) {
	nads := &unstructured.UnstructuredList{}
	nads.SetGroupVersionKind(schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinitionList"})
	lists := []struct {
		kind string
		list client.ObjectList
	}{
		{"VirtualMachine", &kubevirtv1.VirtualMachineList{}},
		{"VirtualMachineInstance", &kubevirtv1.VirtualMachineInstanceList{}},
		{"PersistentVolumeClaim", &corev1.PersistentVolumeClaimList{}},
		{"NetworkAttachmentDefinition", nads},
		{"Secret", &corev1.SecretList{}},
	}
	var left []string
	for _, l := range lists {
		if err := c.Client.List(ctx, l.list, client.InNamespace(namespace), client.MatchingLabels(names.ManagedLabels(machine))); err != nil {
			return nil, fmt.Errorf("cluster %s: listing %ss in %s: %w", c.Name, l.kind, namespace, err)
		}
		err := meta.EachListItem(l.list, func(o runtime.Object) error {
			obj := o.(client.Object)
			if _, pvc := obj.(*corev1.PersistentVolumeClaim); pvc && obj.GetDeletionTimestamp() != nil {
				return nil
			}
			left = append(left, fmt.Sprintf("%s %s/%s on %s", l.kind, namespace, obj.GetName(), c.Name))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cluster %s: reading the %s list: %w", c.Name, l.kind, err)
		}
	}
	return left, nil
}
