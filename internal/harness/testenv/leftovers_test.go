package testenv

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/names"
)

func TestMachineLeftovers(t *testing.T) {
	env := New(t, Options{Clusters: 1})
	c := env.Clusters[0]
	ctx := t.Context()
	const ns = "left"
	require.NoError(t, c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	meta := func(name, machine string) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Namespace: ns, Name: name}
		if machine != "" {
			m.Labels = names.ManagedLabels(machine)
		}
		return m
	}
	pvc := func(name, machine string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: meta(name, machine), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		}}
	}
	nad := func(name, machine string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("k8s.cni.cncf.io/v1")
		u.SetKind("NetworkAttachmentDefinition")
		u.SetNamespace(ns)
		u.SetName(name)
		u.SetLabels(names.ManagedLabels(machine))
		return u
	}
	deleting := pvc("vm1-old", "vm1")
	// What keeps a deleted PVC listed on a cluster without a controller-manager.
	deleting.Finalizers = []string{"kubernetes.io/pvc-protection"}
	for _, o := range []client.Object{
		withMeta(kubevirtadmission.MinimalVM(ns, ""), meta("vm1", "vm1")),
		withMeta(kubevirtadmission.MinimalVMI(ns, ""), meta("vm1", "vm1")),
		pvc("vm1", "vm1"),
		deleting,
		nad("vlan100", "vm1"),
		&corev1.Secret{ObjectMeta: meta("vm1-cloudinit", "vm1")},
		// Another Machine's objects and objects without machineflow's labels.
		withMeta(kubevirtadmission.MinimalVM(ns, ""), meta("vm2", "vm2")),
		nad("vlan200", "vm2"),
		&corev1.Secret{ObjectMeta: meta("vm2-cloudinit", "vm2")},
		pvc("by-hand", ""),
		&corev1.Secret{ObjectMeta: meta("by-hand", "")},
	} {
		require.NoError(t, c.Client.Create(ctx, o), "%T %s", o, o.GetName())
	}
	require.NoError(t, c.Client.Delete(ctx, deleting))

	left, err := c.MachineLeftovers(ctx, ns, "vm1")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"VirtualMachine left/vm1 on kubevirt-1",
		"VirtualMachineInstance left/vm1 on kubevirt-1",
		"PersistentVolumeClaim left/vm1 on kubevirt-1",
		"NetworkAttachmentDefinition left/vlan100 on kubevirt-1",
		"Secret left/vm1-cloudinit on kubevirt-1",
	}, left)

	left, err = c.MachineLeftovers(ctx, "default", "vm1")
	require.NoError(t, err)
	assert.Empty(t, left, "only the given namespace")

	_, err = env.Supervisor.MachineLeftovers(ctx, ns, "vm1")
	assert.ErrorContains(t, err, "cluster supervisor: listing VirtualMachines in left", "a cluster without the KubeVirt API")
}

func withMeta[T interface {
	client.Object
	*kubevirtv1.VirtualMachine | *kubevirtv1.VirtualMachineInstance
}](o T, m metav1.ObjectMeta) T {
	o.SetName(m.Name)
	o.SetNamespace(m.Namespace)
	o.SetLabels(m.Labels)
	return o
}
