package activities

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/internal/vmplan"
)

const cloudInitSecretPayload = "#cloud-config\npassword: sup3r-s3cret-pw\n"

// TestIntegration runs the activities against real API servers (one
// supervisor, two KubeVirt clusters with the simulator). It needs ./bin
// (make tools) and is skipped with -short.
func TestIntegration(t *testing.T) {
	s := newSuite(t)
	s.secrets = append(s.secrets, "sup3r-s3cret-pw", base64.StdEncoding.EncodeToString([]byte(cloudInitSecretPayload)))
	cluster := testenv.ClusterName(1)

	t.Run("provision and deprovision, every activity twice", func(t *testing.T) { testLifecycle(t, s, cluster) })
	t.Run("placement", func(t *testing.T) { testPlacement(t, s) })
	t.Run("LoadMachine failures", func(t *testing.T) { testLoadMachineFailures(t, s) })
	t.Run("conflicts with objects that are not ours", func(t *testing.T) { testConflicts(t, s, cluster) })
	t.Run("boot failures", func(t *testing.T) { testBootFailures(t, s, cluster) })
	t.Run("wait resumes from heartbeat and stops on cancel", func(t *testing.T) { testWaitHeartbeat(t, s, cluster) })
	t.Run("cloud-init Secret: written before the VM, brought up to date on retry, removed with the VM", func(t *testing.T) { testCloudInitSecret(t, s, cluster) })
	t.Run("cloud-init up to the size of a Secret", func(t *testing.T) { testCloudInitSize(t, s, cluster) })
	t.Run("ISO boot and static network data", func(t *testing.T) { testISOAndStaticNetwork(t, s, cluster) })
	t.Run("ISO image URL stays out of activity inputs and results", func(t *testing.T) { testISOURLOutOfHistory(t, s, cluster) })
	t.Run("deletion with partial leftovers", func(t *testing.T) { testPartialDeletion(t, s, cluster) })
	t.Run("deletion of a Machine whose name is too long for a label", func(t *testing.T) { testLongNameDeletion(t, s, cluster) })
	t.Run("storage class resolution", func(t *testing.T) { testStorageClass(t, s, cluster) })
	t.Run("cluster health and classification", func(t *testing.T) { testHealth(t, s) })
}

func testLifecycle(t *testing.T, s *suite, cluster string) {
	ctx := t.Context()
	sup, remote := s.env.Supervisor.Client, s.cluster(cluster)
	ns := s.namespace(t, "lifecycle")
	nn := networkNamespace(ns, "net42", nil)
	s.create(t, sup,
		&v1alpha1.MachineClass{ObjectMeta: metav1.ObjectMeta{Name: "small"}, Spec: v1alpha1.MachineClassSpec{
			Enabled: true, Category: "standard", MachineProviders: []v1alpha1.MachineProviderType{"kubevirt"}, Memory: v1alpha1.MachineClassMemorySpec{Quantity: resource.MustParse("4Gi")},
			CPU: v1alpha1.MachineClassCPUSpec{Cores: 2, Sockets: 1, Threads: 1},
			GPU: v1alpha1.MachineClassGPUSpec{Cores: 1}, // the CRD requires it; unused
		}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ci"}, Data: map[string][]byte{"userdata": []byte(cloudInitSecretPayload)}},
		nn,
	)
	nn.Status.VlanID = 42
	require.NoError(t, sup.Status().Update(ctx, nn))
	ref := s.machine(t, ns, "vm1", func(m *v1alpha1.Machine) {
		m.Annotations = map[string]string{names.VMAnnotationPrefix + "note": "hello", "other.io/x": "y"}
		m.Spec.MachineClass = "small"
		m.Spec.Disks = []v1alpha1.MachineSpecDisk{{SizeGB: 20, Boot: true}, {Name: "data", SizeGB: 5, Type: "sata"}}
		m.Spec.Network.NetworkNamespaceName = "net42"
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserDataSecretRef: &v1alpha1.CloudInitSecretRef{Name: "ci"}}
	})
	rm := contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref}

	// Placement, twice: the annotation is patched once.
	for range 2 {
		var p contract.Placement
		s.must(t, &p, s.acts.ResolvePlacement, contract.PlacementInput{Machine: ref, KubevirtConfig: cluster})
		require.Equal(t, cluster, p.KubevirtConfig)
	}
	m := &v1alpha1.Machine{}
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vm1"}, m))
	require.Equal(t, cluster, m.Annotations[names.PlacementAnnotation])
	require.Equal(t, "hello", m.Annotations[names.VMAnnotationPrefix+"note"], "the patch keeps other annotations")
	var looked contract.Placement
	s.must(t, &looked, s.acts.LookupPlacement, ref)
	require.Equal(t, cluster, looked.KubevirtConfig)

	s.must(t, nil, s.acts.ValidateCluster, contract.ClusterRef{KubevirtConfig: cluster})

	var plan contract.MachinePlan
	s.must(t, &plan, s.acts.LoadMachine, ref)
	require.Equal(t, "4Gi", plan.Memory)
	require.Equal(t, contract.NetworkPlan{NetworkNamespace: "net42", VLANID: 42}, plan.Network)
	require.True(t, plan.CloudInit)

	for range 2 {
		s.must(t, nil, s.acts.EnsureNamespace, rm)
	}
	remoteNS := &corev1.Namespace{}
	require.NoError(t, remote.Get(ctx, client.ObjectKey{Name: ns}, remoteNS))
	require.Equal(t, names.ManagedByValue, remoteNS.Labels[names.ManagedByLabel])

	var vols, vols2 contract.VolumesResult
	s.must(t, &vols, s.acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: cluster, Machine: ref, Disks: plan.Disks})
	s.must(t, &vols2, s.acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: cluster, Machine: ref, Disks: plan.Disks})
	require.Equal(t, []string{"vm1", "vm1-data"}, vols.Created)
	require.Empty(t, vols2.Created)
	require.Equal(t, vols.Volumes, vols2.Volumes)
	require.Equal(t, contract.VolumeStatus{PVCName: "vm1", Size: "20Gi", StorageClass: testenv.DefaultStorageClass, VolumeMode: "Block",
		AccessModes: []string{"ReadWriteMany"}}, vols.Volumes[0], "the StorageProfile has no Block set: PVC_ACCESS_MODE")
	pvcs := &corev1.PersistentVolumeClaimList{}
	require.NoError(t, remote.List(ctx, pvcs, client.InNamespace(ns), ownedBy("vm1")))
	require.Len(t, pvcs.Items, 2)
	for _, p := range pvcs.Items {
		require.Equal(t, p.Name == "vm1", p.Labels[vmplan.BootPVCLabel] == vmplan.BootPVCLabelValue, "boot label on %s", p.Name)
	}

	var net1, net2 contract.NetworkResult
	s.must(t, &net1, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: ref, Network: plan.Network})
	s.must(t, &net2, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: ref, Network: plan.Network})
	require.Equal(t, "vlan42", net1.NetworkName)
	require.True(t, net1.NADCreated)
	require.True(t, net1.NetworkConfigurationCreated)
	require.False(t, net2.NADCreated)
	require.False(t, net2.NetworkConfigurationCreated)
	require.Equal(t, net1.MACAddress, net2.MACAddress, "the MAC is stable")
	require.Regexp(t, `^02:12:`, net1.MACAddress)
	nc := &v1alpha1.NetworkConfiguration{}
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vm1"}, nc))
	require.Equal(t, []v1alpha1.NetworkConfigurationInterface{{Name: "vlan42", MacAddress: net1.MACAddress}}, nc.Spec.NetworkInterfaces)
	require.True(t, metav1.IsControlledBy(nc, m))
	require.Equal(t, "vm1", nc.Spec.Name)
	nads := nadList(t, remote, ns)
	require.Len(t, nads, 1)

	var vm1, vm2 contract.VirtualMachineResult
	s.must(t, &vm1, s.acts.EnsureVirtualMachine, contract.VirtualMachineInput{KubevirtConfig: cluster, Plan: plan, Network: net1})
	s.must(t, &vm2, s.acts.EnsureVirtualMachine, contract.VirtualMachineInput{KubevirtConfig: cluster, Plan: plan, Network: net1})
	require.True(t, vm1.Created)
	require.False(t, vm2.Created)
	require.Equal(t, contract.VirtualMachineResult{Namespace: ns, Name: "vm1"}, contract.VirtualMachineResult{Namespace: vm2.Namespace, Name: vm2.Name})
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vm1"}, vm))
	require.Equal(t, map[string]string{names.VMAnnotationPrefix + "note": "hello"}, vm.Annotations)
	require.Equal(t, map[string][]byte{vmplan.CloudInitUserDataKey: []byte(cloudInitSecretPayload)}, cloudInitSecret(t, remote, ns, "vm1").Data,
		"cloud-init from the supervisor's Secret, key userdata, in the VM's Secret on the cluster")
	requireNoInlineCloudInit(t, vm, cloudInitSecretPayload)
	require.Equal(t, net1.MACAddress, vm.Spec.Template.Spec.Domain.Devices.Interfaces[0].MacAddress)

	var obs contract.VMObservation
	s.must(t, &obs, s.acts.WaitForVirtualMachine, rm)
	require.Equal(t, v1alpha1.MachinePhaseRunning, obs.Phase)
	require.NotEmpty(t, obs.IPAddresses)
	require.True(t, strings.HasPrefix(obs.IPAddresses[0], "10.100."), "address from cluster 1's pool: %v", obs.IPAddresses)

	var st1, st2 contract.StatusResult
	upd := contract.StatusUpdate{Machine: ref, Phase: obs.Phase, KubevirtConfig: cluster, Observation: &obs,
		Condition: &contract.Condition{Type: v1alpha1.MachineConditionReady, Status: v1alpha1.ConditionTrue, Reason: "Running"}}
	s.must(t, &st1, s.acts.UpdateMachineStatus, upd)
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vm1"}, m))
	rv := m.ResourceVersion
	s.must(t, &st2, s.acts.UpdateMachineStatus, upd)
	require.True(t, st1.Changed)
	require.False(t, st2.Changed)
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vm1"}, m))
	require.Equal(t, rv, m.ResourceVersion, "an unchanged status is not written")
	require.Equal(t, "Running", m.Status.Phase)
	require.Equal(t, v1alpha1.MachineProviderType("kubevirt"), m.Status.Provider)
	require.Equal(t, obs.IPAddresses, m.Status.IPAddresses)
	require.Len(t, m.Status.Conditions, 1)
	require.Nil(t, m.Status.FailureReason)

	// Deprovision in the safe order, each step twice.
	var del contract.DeleteResult
	s.must(t, &del, s.acts.DeleteVirtualMachine, rm)
	require.Equal(t, []string{"VirtualMachine " + ns + "/vm1 on " + cluster, "Secret " + ns + "/vm1-cloudinit on " + cluster}, del.Deleted)
	err := remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vm1"}, &kubevirtv1.VirtualMachineInstance{})
	require.True(t, apierrors.IsNotFound(err), "VMI gone: %v", err)
	err = remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vm1"}, &kubevirtv1.VirtualMachine{})
	require.True(t, apierrors.IsNotFound(err), "VM gone: %v", err)
	err = remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vm1-cloudinit"}, &corev1.Secret{})
	require.True(t, apierrors.IsNotFound(err), "cloud-init Secret gone: %v", err)
	s.must(t, &del, s.acts.DeleteVirtualMachine, rm)
	require.Empty(t, del.Deleted)

	s.must(t, &del, s.acts.DeleteVolumes, contract.DeleteVolumesInput{RemoteMachine: rm})
	require.Len(t, del.Deleted, 2)
	s.must(t, &del, s.acts.DeleteVolumes, contract.DeleteVolumesInput{RemoteMachine: rm})
	require.Empty(t, del.Deleted)
	require.NoError(t, remote.List(ctx, pvcs, client.InNamespace(ns), ownedBy("vm1")))
	require.Zero(t, countLive(t, pvcs.Items, func(p corev1.PersistentVolumeClaim) bool { return p.DeletionTimestamp != nil }))

	s.must(t, &del, s.acts.DeleteNetwork, rm)
	require.Equal(t, []string{"NetworkAttachmentDefinition " + ns + "/vlan42 on " + cluster}, del.Deleted)
	s.must(t, &del, s.acts.DeleteNetwork, rm)
	require.Empty(t, del.Deleted)
	require.Empty(t, nadList(t, remote, ns))

	s.must(t, &del, s.acts.DeleteNetworkConfiguration, ref)
	require.Len(t, del.Deleted, 1)
	s.must(t, &del, s.acts.DeleteNetworkConfiguration, ref)
	require.Empty(t, del.Deleted)
}

func nadList(t *testing.T, c client.Client, ns string) []unstructured.Unstructured {
	t.Helper()
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(vmplan.NADGVK.GroupVersion().WithKind("NetworkAttachmentDefinitionList"))
	require.NoError(t, c.List(t.Context(), l, client.InNamespace(ns)))
	return l.Items
}

func testPlacement(t *testing.T, s *suite) {
	ns := s.namespace(t, "placement")
	ref := s.machine(t, ns, "p1", nil)

	// Two clusters, no annotation, no VM anywhere: nothing to decide by.
	err := s.run(t, nil, s.acts.ResolvePlacement, contract.PlacementInput{Machine: ref})
	requireAppError(t, err, contract.ErrTypeAmbiguousPlacement, true)

	err = s.run(t, nil, s.acts.ResolvePlacement, contract.PlacementInput{Machine: ref, KubevirtConfig: "no-such-config"})
	requireAppError(t, err, contract.ErrTypeConfigNotFound, true)

	s.must(t, nil, s.acts.ResolvePlacement, contract.PlacementInput{Machine: ref, KubevirtConfig: testenv.ClusterName(2)})
	// Without a request the annotation wins.
	var p contract.Placement
	s.must(t, &p, s.acts.ResolvePlacement, contract.PlacementInput{Machine: ref})
	require.Equal(t, testenv.ClusterName(2), p.KubevirtConfig)
	err = s.run(t, nil, s.acts.ResolvePlacement, contract.PlacementInput{Machine: ref, KubevirtConfig: testenv.ClusterName(1)})
	appErr := requireAppError(t, err, contract.ErrTypeAmbiguousPlacement, true)
	require.Contains(t, appErr.Message(), `placed on KubevirtConfig "kubevirt-2"`)

	s.must(t, &p, s.acts.LookupPlacement, contract.MachineRef{Namespace: ns, Name: "gone"})
	require.Empty(t, p.KubevirtConfig)
	s.must(t, nil, s.acts.InvalidateClusterClient, contract.ClusterRef{KubevirtConfig: testenv.ClusterName(2)})

	err = s.run(t, nil, s.acts.ResolvePlacement, contract.PlacementInput{Machine: contract.MachineRef{Namespace: ns, Name: "gone"}})
	requireAppError(t, err, contract.ErrTypeMachineNotFound, true)
}

func testLoadMachineFailures(t *testing.T, s *suite) {
	sup := s.env.Supervisor.Client
	ns := s.namespace(t, "load")
	err := s.run(t, nil, s.acts.LoadMachine, contract.MachineRef{Namespace: ns, Name: "missing"})
	requireAppError(t, err, contract.ErrTypeMachineNotFound, true)

	aws := s.machine(t, ns, "aws", func(m *v1alpha1.Machine) { m.Spec.Provider = "aws" })
	appErr := requireAppError(t, s.run(t, nil, s.acts.LoadMachine, aws), contract.ErrTypeUnsupportedProvider, true)
	require.Contains(t, appErr.Message(), "spec.provider")

	noClass := s.machine(t, ns, "noclass", func(m *v1alpha1.Machine) { m.Spec.MachineClass = "huge" })
	appErr = requireAppError(t, s.run(t, nil, s.acts.LoadMachine, noClass), contract.ErrTypeInvalidSpec, true)
	require.Contains(t, appErr.Message(), `spec.machineClass: MachineClass "huge" not found`)

	noNet := s.machine(t, ns, "nonet", func(m *v1alpha1.Machine) { m.Spec.Network.NetworkNamespaceName = "absent" })
	appErr = requireAppError(t, s.run(t, nil, s.acts.LoadMachine, noNet), contract.ErrTypeInvalidSpec, true)
	require.Contains(t, appErr.Message(), `spec.network.networkNamespaceName: NetworkNamespace "absent" not found`)

	badDisk := s.machine(t, ns, "baddisk", func(m *v1alpha1.Machine) {
		m.Spec.Disks = []v1alpha1.MachineSpecDisk{{SizeGB: 1, Boot: true}, {Name: "x", SizeGB: 2, Boot: true}}
	})
	appErr = requireAppError(t, s.run(t, nil, s.acts.LoadMachine, badDisk), contract.ErrTypeInvalidSpec, true)
	require.Contains(t, appErr.Message(), "spec.disks[1].boot: only one disk can boot")

	// Cloud-init sources that do not exist yet are a retryable wait, then work.
	ci := s.machine(t, ns, "ci", func(m *v1alpha1.Machine) {
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\n",
			NetworkDataConfigMapRef: &v1alpha1.CloudInitConfigMapRef{Name: "netcfg", Key: "net"}}
	})
	appErr = requireAppError(t, s.run(t, nil, s.acts.LoadMachine, ci), contract.ErrTypeWaiting, false)
	require.Contains(t, appErr.Message(), "spec.cloudInit.networkDataConfigMapRef: ConfigMap "+ns+"/netcfg does not exist yet")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "netcfg"}, Data: map[string]string{"other": "x"}}
	s.create(t, sup, cm)
	appErr = requireAppError(t, s.run(t, nil, s.acts.LoadMachine, ci), contract.ErrTypeWaiting, false)
	require.Contains(t, appErr.Message(), `has no key "net" yet`)
	cm.Data = map[string]string{"net": "version: 1\n"}
	require.NoError(t, sup.Update(t.Context(), cm))
	s.must(t, nil, s.acts.LoadMachine, ci)

	// Legacy NetworkNamespace lookup: the one named after the Machine.
	s.create(t, sup, networkNamespace(ns, "legacy", &v1alpha1.NetworkNamespaceIPAllocation{Type: v1alpha1.IPAllocationTypeDHCP}))
	var plan contract.MachinePlan
	s.must(t, &plan, s.acts.LoadMachine, s.machine(t, ns, "legacy", nil))
	require.Equal(t, contract.NetworkPlan{NetworkNamespace: "legacy", PodNetwork: true}, plan.Network)
	// ... else the first in the namespace.
	s.must(t, &plan, s.acts.LoadMachine, s.machine(t, ns, "other", nil))
	require.Equal(t, "legacy", plan.Network.NetworkNamespace)
}

func testConflicts(t *testing.T, s *suite, cluster string) {
	ctx := t.Context()
	remote := s.cluster(cluster)
	ns := s.namespace(t, "conflict")
	ref := s.machine(t, ns, "c1", nil)
	rm := contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref}
	s.must(t, nil, s.acts.EnsureNamespace, rm)

	foreignPVC := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c1", Labels: map[string]string{"app": "someone-else"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	s.create(t, remote, foreignPVC)
	disks := []contract.DiskPlan{{Name: "root", PVCName: "c1", Size: "10Gi", Bus: "virtio", BootOrder: 1}}
	err := s.run(t, nil, s.acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: cluster, Machine: ref, Disks: disks})
	appErr := requireAppError(t, err, contract.ErrTypeConflict, true)
	require.Contains(t, appErr.Message(), "PersistentVolumeClaim "+ns+"/c1 on "+cluster)
	got := &corev1.PersistentVolumeClaim{}
	require.NoError(t, remote.Get(ctx, client.ObjectKeyFromObject(foreignPVC), got))
	require.Equal(t, map[string]string{"app": "someone-else"}, got.Labels, "never overwritten")
	require.Equal(t, "1Gi", got.Spec.Resources.Requests.Storage().String())

	foreignNAD, err := vmplan.BuildNAD(ref, 7, "0.3.1")
	require.NoError(t, err)
	foreignNAD.SetLabels(nil)
	s.create(t, remote, foreignNAD)
	err = s.run(t, nil, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: ref, Network: contract.NetworkPlan{VLANID: 7}})
	requireAppError(t, err, contract.ErrTypeConflict, true)

	foreignVM := kubevirtadmission.MinimalVM(ns, "c1")
	s.create(t, remote, foreignVM)
	plan := testPlan(ref)
	err = s.run(t, nil, s.acts.EnsureVirtualMachine, contract.VirtualMachineInput{KubevirtConfig: cluster, Plan: plan,
		Network: contract.NetworkResult{NetworkName: "default", MACAddress: "02:12:00:00:00:09"}})
	requireAppError(t, err, contract.ErrTypeConflict, true)
	// Deletion leaves what is not ours alone.
	var del contract.DeleteResult
	s.must(t, &del, s.acts.DeleteVirtualMachine, rm)
	require.Empty(t, del.Deleted)
	s.must(t, &del, s.acts.DeleteVolumes, contract.DeleteVolumesInput{RemoteMachine: rm})
	require.Empty(t, del.Deleted)
	s.must(t, &del, s.acts.DeleteNetwork, rm)
	require.Empty(t, del.Deleted)
	require.NoError(t, remote.Get(ctx, client.ObjectKeyFromObject(foreignVM), &kubevirtv1.VirtualMachine{}))
	require.NoError(t, remote.Get(ctx, client.ObjectKeyFromObject(foreignPVC), &corev1.PersistentVolumeClaim{}))
	require.Len(t, nadList(t, remote, ns), 1)
}

// provisionVM runs the Ensure activities for a Machine on the pod network.
func provisionVM(t *testing.T, s *suite, cluster string, ref contract.MachineRef) (contract.MachinePlan, contract.NetworkResult) {
	t.Helper()
	rm := contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref}
	var plan contract.MachinePlan
	s.must(t, &plan, s.acts.LoadMachine, ref)
	s.must(t, nil, s.acts.EnsureNamespace, rm)
	s.must(t, nil, s.acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: cluster, Machine: ref, Disks: plan.Disks})
	var net contract.NetworkResult
	s.must(t, &net, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: ref, Network: plan.Network})
	s.must(t, nil, s.acts.EnsureVirtualMachine, contract.VirtualMachineInput{KubevirtConfig: cluster, Plan: plan, Network: net})
	return plan, net
}

func testBootFailures(t *testing.T, s *suite, cluster string) {
	ns := s.namespace(t, "bootfail")
	want := map[kubevirtsim.Failure]string{
		kubevirtsim.ErrImagePull:     "ErrImagePull",
		kubevirtsim.ImagePullBackOff: "ImagePullBackOff",
		kubevirtsim.CrashLoopBackOff: "CrashLoopBackOff",
		kubevirtsim.Unschedulable:    "Unschedulable",
		kubevirtsim.DataVolumeError:  "DataVolumeError",
		kubevirtsim.PvcNotFound:      "PvcNotFound",
	}
	for _, f := range kubevirtsim.Failures {
		t.Run(string(f), func(t *testing.T) {
			name := "f-" + strings.ToLower(string(f))
			ref := s.machine(t, ns, name, func(m *v1alpha1.Machine) {
				m.Annotations = map[string]string{kubevirtsim.FailureAnnotation: string(f)}
			})
			provisionVM(t, s, cluster, ref)
			err := s.run(t, nil, s.acts.WaitForVirtualMachine, contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref})
			appErr := requireAppError(t, err, contract.ErrTypeBootFailed, true)
			require.Contains(t, appErr.Message(), "VirtualMachine "+ns+"/"+name+" failed to boot: "+want[f])

			var st contract.StatusResult
			s.must(t, &st, s.acts.UpdateMachineStatus, contract.StatusUpdate{Machine: ref, Phase: v1alpha1.MachinePhaseFailed,
				Failure: &contract.Failure{Reason: contract.ErrTypeBootFailed, Message: appErr.Message()}})
			require.True(t, st.Changed)
			m := &v1alpha1.Machine{}
			require.NoError(t, s.env.Supervisor.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, m))
			require.Equal(t, contract.ErrTypeBootFailed, *m.Status.FailureReason)
		})
	}
}

func testWaitHeartbeat(t *testing.T, s *suite, cluster string) {
	ns := s.namespace(t, "heartbeat")
	ref := s.machine(t, ns, "slow", func(m *v1alpha1.Machine) {
		m.Annotations = map[string]string{kubevirtsim.BootDelayAnnotation: "1500ms"}
	})
	provisionVM(t, s, cluster, ref)
	rm := contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref}

	firstSeen := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(s.acts)
	env.SetHeartbeatDetails(WaitProgress{FirstSeen: firstSeen, Phase: "Pending", State: "Starting", Polls: 7})
	var beats []WaitProgress
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var p WaitProgress
		require.NoError(t, details.Get(&p))
		beats = append(beats, p)
	})
	var obs contract.VMObservation
	require.NoError(t, s.exec(t, env, &obs, s.acts.WaitForVirtualMachine, rm))
	require.Equal(t, "Running", obs.Phase)
	// The SDK throttles heartbeats, so the listener sees the first of them.
	require.NotEmpty(t, beats)
	require.True(t, beats[0].FirstSeen.Equal(firstSeen), "resumed first-seen time kept")
	require.Equal(t, 8, beats[0].Polls, "poll count continues from the heartbeat")

	// A VM that never becomes ready: the activity waits until cancelled.
	stuck := s.machine(t, ns, "stuck", func(m *v1alpha1.Machine) {
		m.Annotations = map[string]string{kubevirtsim.NeverReadyAnnotation: "true"}
	})
	provisionVM(t, s, cluster, stuck)
	bg, cancel := context.WithCancel(context.Background())
	env = (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(s.acts)
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: bg})
	// start is taken before the timer is armed: an activity ended by the
	// cancel has then run for at least the second, with no scheduling slack.
	start := time.Now()
	timer := time.AfterFunc(time.Second, cancel)
	defer timer.Stop()
	err := s.exec(t, env, nil, s.acts.WaitForVirtualMachine, contract.RemoteMachine{KubevirtConfig: cluster, Machine: stuck})
	require.Error(t, err)
	require.Contains(t, err.Error(), "canceled")
	require.GreaterOrEqual(t, time.Since(start), time.Second, "a healthy-but-slow boot is not given up on")
}

func testISOAndStaticNetwork(t *testing.T, s *suite, cluster string) {
	ctx := t.Context()
	sup, remote := s.env.Supervisor.Client, s.cluster(cluster)
	ns := s.namespace(t, "iso")
	nn := networkNamespace(ns, "static", &v1alpha1.NetworkNamespaceIPAllocation{
		Type: v1alpha1.IPAllocationTypeStatic, Static: &v1alpha1.StaticIPAllocationConfig{
			IPv4CIDR: "192.168.10.0/24", IPv4Gateway: "192.168.10.1", DNS: []string{"1.1.1.1"}}})
	s.create(t, sup, nn)
	ref := s.machine(t, ns, "inst", func(m *v1alpha1.Machine) {
		m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume}
		m.Spec.OS.ImageID = s.iso.URL + "/os.iso"
		m.Spec.Network.NetworkNamespaceName = "static"
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\n"}
	})
	var plan contract.MachinePlan
	s.must(t, &plan, s.acts.LoadMachine, ref)
	s.must(t, nil, s.acts.EnsureNamespace, contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref})
	require.True(t, plan.Boot.ISO)
	require.True(t, plan.Network.Static)
	var net contract.NetworkResult
	s.must(t, &net, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: ref, Network: plan.Network})
	require.Equal(t, "vlan0", net.NADName, "static allocation uses an untagged bridge")
	in := contract.VirtualMachineInput{KubevirtConfig: cluster, Plan: plan, Network: net}

	// No address allocated yet: wait, create nothing.
	appErr := requireAppError(t, s.run(t, nil, s.acts.EnsureVirtualMachine, in), contract.ErrTypeWaiting, false)
	require.Contains(t, appErr.Message(), "no IPv4 address allocated yet")
	err := remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "inst"}, &kubevirtv1.VirtualMachine{})
	require.True(t, apierrors.IsNotFound(err))
	err = remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "inst-cloudinit"}, &corev1.Secret{})
	require.True(t, apierrors.IsNotFound(err), "no cloud-init Secret before its network data is known: %v", err)

	nc := &v1alpha1.NetworkConfiguration{}
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "inst"}, nc))
	nc.Status.NetworkInterfaces = []v1alpha1.NetworkConfigurationInterface{{MacAddress: strings.ToUpper(net.MACAddress), IPv4Addresses: []string{"192.168.10.20"}}}
	require.NoError(t, sup.Status().Update(ctx, nc))

	heads := s.iso.heads.Load()
	var res contract.VirtualMachineResult
	s.must(t, &res, s.acts.EnsureVirtualMachine, in)
	require.True(t, res.Created)
	s.must(t, &res, s.acts.EnsureVirtualMachine, in)
	require.False(t, res.Created)
	require.Equal(t, heads+1, s.iso.heads.Load(), "the ISO is sized once, when the VM is created")

	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "inst"}, vm))
	require.Len(t, vm.Spec.DataVolumeTemplates, 1)
	require.Equal(t, "4Gi", vm.Spec.DataVolumeTemplates[0].Spec.Storage.Resources.Requests.Storage().String(), "3Gi ×1.1 rounded up")
	netData := string(cloudInitSecret(t, remote, ns, "inst").Data[vmplan.CloudInitNetworkDataKey])
	require.Equal(t, "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    mac_address: \""+net.MACAddress+"\"\n"+
		"    subnets:\n      - type: static\n        address: 192.168.10.20\n        netmask: 255.255.255.0\n"+
		"        gateway: 192.168.10.1\n        dns_nameservers:\n          - 1.1.1.1\n", netData)
	requireNoInlineCloudInit(t, vm, netData)
	vols := vm.Spec.Template.Spec.Volumes
	require.Equal(t, "inst-cloudinit", vols[len(vols)-1].CloudInitNoCloud.NetworkDataSecretRef.Name)
}

// testISOURLOutOfHistory provisions from an image URL with a password and
// a signed query: the VM's DataVolume imports from exactly that URL, which
// EnsureVirtualMachine reads from the Machine, while no activity input or
// result (what history records) contains any part of it. A Machine whose
// image is removed after LoadMachine gets no VM.
func testISOURLOutOfHistory(t *testing.T, s *suite, cluster string) {
	ctx := t.Context()
	remote := s.cluster(cluster)
	const password, signature, path = "isoPa55w0rd", "sig-7f3a9c", "/signed-installer.iso"
	imageURL := strings.Replace(s.iso.URL, "://", "://installer:"+password+"@", 1) + path + "?X-Amz-Signature=" + signature
	s.secrets = append(s.secrets, imageURL, password, signature, path)
	ns := s.namespace(t, "iso-history")
	isoMachine := func(m *v1alpha1.Machine) {
		m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume}
		m.Spec.OS.ImageID = imageURL
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\n"}
	}

	rm := contract.RemoteMachine{KubevirtConfig: cluster, Machine: s.machine(t, ns, "signed", isoMachine)}
	heads := s.iso.heads.Load()
	provisionISOMachine(t, s, rm)
	require.Equal(t, heads+1, s.iso.heads.Load(), "the ISO is sized from the Machine's URL")
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "signed"}, vm))
	require.Equal(t, imageURL, vm.Spec.DataVolumeTemplates[0].Spec.Source.HTTP.URL)

	gone := contract.RemoteMachine{KubevirtConfig: cluster, Machine: s.machine(t, ns, "gone", isoMachine)}
	var plan contract.MachinePlan
	s.must(t, &plan, s.acts.LoadMachine, gone.Machine)
	require.Equal(t, contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: vmplan.ISOSourceHTTP}, plan.Boot)
	m := &v1alpha1.Machine{}
	require.NoError(t, s.env.Supervisor.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gone"}, m))
	m.Spec.OS.ImageID = ""
	require.NoError(t, s.env.Supervisor.Client.Update(ctx, m))
	s.must(t, nil, s.acts.EnsureNamespace, gone)
	var net contract.NetworkResult
	s.must(t, &net, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: gone.Machine, Network: plan.Network})
	err := s.run(t, nil, s.acts.EnsureVirtualMachine, contract.VirtualMachineInput{KubevirtConfig: cluster, Plan: plan, Network: net})
	appErr := requireAppError(t, err, contract.ErrTypeInvalidSpec, true)
	require.Contains(t, appErr.Message(), "Machine "+ns+"/gone: spec.os.imageID: changed since LoadMachine")
	err = remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gone"}, &kubevirtv1.VirtualMachine{})
	require.True(t, apierrors.IsNotFound(err), "no VM for a Machine that contradicts its plan: %v", err)
}

func testPartialDeletion(t *testing.T, s *suite, cluster string) {
	ctx := t.Context()
	remote := s.cluster(cluster)
	ns := s.namespace(t, "partial")
	ref := s.machine(t, ns, "half", func(m *v1alpha1.Machine) {
		m.Spec.Disks = []v1alpha1.MachineSpecDisk{{SizeGB: 2, Boot: true}, {Name: "logs", SizeGB: 1}}
	})
	rm := contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref}
	var plan contract.MachinePlan
	s.must(t, &plan, s.acts.LoadMachine, ref)
	s.must(t, nil, s.acts.EnsureNamespace, rm)
	s.must(t, nil, s.acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: cluster, Machine: ref, Disks: plan.Disks})
	s.must(t, nil, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: ref, Network: contract.NetworkPlan{VLANID: 99}})
	// A left-over ISO DataVolume from an earlier run.
	dv := &unstructured.Unstructured{}
	dv.SetAPIVersion("cdi.kubevirt.io/v1beta1")
	dv.SetKind("DataVolume")
	dv.SetNamespace(ns)
	dv.SetName("half-iso")
	dv.SetLabels(names.ManagedLabels("half"))
	require.NoError(t, unstructured.SetNestedField(dv.Object, map[string]any{"blank": map[string]any{}}, "spec", "source"))
	require.NoError(t, unstructured.SetNestedField(dv.Object, map[string]any{"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}, "spec", "storage"))
	s.create(t, remote, dv)

	var del contract.DeleteResult
	s.must(t, &del, s.acts.DeleteVirtualMachine, rm)
	require.Empty(t, del.Deleted, "there never was a VM")
	// Compensation passes only what its run created.
	s.must(t, &del, s.acts.DeleteVolumes, contract.DeleteVolumesInput{RemoteMachine: rm, PVCNames: []string{"half-logs"}})
	require.ElementsMatch(t, []string{
		"PersistentVolumeClaim " + ns + "/half-logs on " + cluster,
		"DataVolume " + ns + "/half-iso on " + cluster,
	}, del.Deleted)
	pvc := &corev1.PersistentVolumeClaim{}
	require.NoError(t, remote.Get(ctx, client.ObjectKey{Namespace: ns, Name: "half"}, pvc))
	require.Nil(t, pvc.DeletionTimestamp, "unnamed claims stay")
	s.must(t, &del, s.acts.DeleteVolumes, contract.DeleteVolumesInput{RemoteMachine: rm})
	require.Equal(t, []string{"PersistentVolumeClaim " + ns + "/half on " + cluster}, del.Deleted)

	// The NAD stays while another VM uses it, and goes with the last user.
	other := s.machine(t, ns, "user", nil)
	otherPlan := testPlan(other)
	var otherNet contract.NetworkResult
	s.must(t, &otherNet, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: cluster, Machine: other, Network: contract.NetworkPlan{VLANID: 99}})
	require.False(t, otherNet.NADCreated, "the VLAN's NAD is shared")
	s.must(t, nil, s.acts.EnsureVirtualMachine, contract.VirtualMachineInput{KubevirtConfig: cluster, Plan: otherPlan, Network: otherNet})
	s.must(t, &del, s.acts.DeleteNetwork, rm)
	require.Empty(t, del.Deleted)
	s.must(t, nil, s.acts.DeleteVirtualMachine, contract.RemoteMachine{KubevirtConfig: cluster, Machine: other})
	s.must(t, &del, s.acts.DeleteNetwork, rm)
	require.Equal(t, []string{"NetworkAttachmentDefinition " + ns + "/vlan99 on " + cluster}, del.Deleted)

	s.must(t, &del, s.acts.DeleteNetworkConfiguration, ref)
	require.Len(t, del.Deleted, 1)
	// A Machine that is gone: status writes are no-ops.
	var st contract.StatusResult
	s.must(t, &st, s.acts.UpdateMachineStatus, contract.StatusUpdate{Machine: contract.MachineRef{Namespace: ns, Name: "gone"}, Phase: "Terminated"})
	require.False(t, st.Changed)
}

// testLongNameDeletion: a Machine name of 64 to 253 characters is refused
// by LoadMachine, and its deletion, which finds nothing, must succeed
// rather than fail on a label selector the API server rejects.
func testLongNameDeletion(t *testing.T, s *suite, cluster string) {
	ns := s.namespace(t, "longname")
	ref := s.machine(t, ns, strings.Repeat("l", 64), nil)
	requireAppError(t, s.run(t, nil, s.acts.LoadMachine, ref), contract.ErrTypeInvalidSpec, true)
	rm := contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref}
	for _, fn := range []any{s.acts.DeleteVirtualMachine, s.acts.DeleteNetwork} {
		var del contract.DeleteResult
		s.must(t, &del, fn, rm)
		require.Empty(t, del.Deleted)
	}
	var del contract.DeleteResult
	s.must(t, &del, s.acts.DeleteVolumes, contract.DeleteVolumesInput{RemoteMachine: rm})
	require.Empty(t, del.Deleted)
}

func testStorageClass(t *testing.T, s *suite, cluster string) {
	ns := s.namespace(t, "storage")
	ref := s.machine(t, ns, "sc", nil)
	s.must(t, nil, s.acts.EnsureNamespace, contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref})
	settings := s.settings
	settings.StorageClassName = "fast-nvme"
	acts, err := New(Deps{Clients: s.clients, Supervisor: s.env.Supervisor.Client, Settings: settings})
	require.NoError(t, err)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	_, err = env.ExecuteActivity(acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: cluster, Machine: ref,
		Disks: []contract.DiskPlan{{Name: "root", PVCName: "sc", Size: "1Gi", BootOrder: 1}}})
	appErr := requireAppError(t, err, contract.ErrTypeStorageClassNotFound, true)
	require.Contains(t, appErr.Message(), `StorageClass "fast-nvme" (STORAGE_CLASS_NAME) does not exist on `+cluster)

	// Filesystem volumes take the StorageProfile's access mode.
	settings = s.settings
	settings.PVCVolumeMode = "Filesystem"
	acts, err = New(Deps{Clients: s.clients, Supervisor: s.env.Supervisor.Client, Settings: settings})
	require.NoError(t, err)
	env = (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	val, err := env.ExecuteActivity(acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: cluster, Machine: ref,
		Disks: []contract.DiskPlan{{Name: "root", PVCName: "sc", Size: "1Gi", BootOrder: 1}}})
	require.NoError(t, err)
	var res contract.VolumesResult
	require.NoError(t, val.Get(&res))
	require.Equal(t, []string{"ReadWriteOnce"}, res.Volumes[0].AccessModes)
	require.Equal(t, "Filesystem", res.Volumes[0].VolumeMode)
}

func testHealth(t *testing.T, s *suite) {
	ctx := t.Context()
	sup := s.env.Supervisor.Client
	require.NoError(t, s.env.RegisterCluster(ctx, "a-unreachable", unreachableKubeconfig(t)))
	require.NoError(t, s.env.RegisterCluster(ctx, "b-garbage", []byte("not: [a kubeconfig")))

	var names []string
	s.must(t, &names, s.acts.ListClusters)
	require.Equal(t, []string{"a-unreachable", "b-garbage", testenv.ClusterName(1), testenv.ClusterName(2)}, names)

	err := s.run(t, nil, s.acts.ValidateCluster, contract.ClusterRef{KubevirtConfig: "a-unreachable"})
	requireAppError(t, err, contract.ErrTypeClusterUnreachable, false)
	err = s.run(t, nil, s.acts.ValidateCluster, contract.ClusterRef{KubevirtConfig: "b-garbage"})
	requireAppError(t, err, contract.ErrTypeInvalidKubeconfig, true)
	err = s.run(t, nil, s.acts.ValidateCluster, contract.ClusterRef{KubevirtConfig: "absent"})
	requireAppError(t, err, contract.ErrTypeConfigNotFound, true)

	var healthy, broken contract.ClusterHealth
	s.must(t, &healthy, s.acts.CheckCluster, contract.ClusterRef{KubevirtConfig: testenv.ClusterName(1)})
	require.True(t, healthy.Healthy)
	require.Empty(t, healthy.Reason)
	require.False(t, healthy.CheckedAt.IsZero())
	s.must(t, &broken, s.acts.CheckCluster, contract.ClusterRef{KubevirtConfig: "b-garbage"})
	require.False(t, broken.Healthy)
	require.Contains(t, broken.Reason, contract.ErrTypeInvalidKubeconfig)
	require.NotContains(t, broken.Reason, "not: [a kubeconfig")

	for _, h := range []contract.ClusterHealth{healthy, broken} {
		s.must(t, nil, s.acts.RecordClusterHealth, h)
		kvc := &v1alpha1.KubevirtConfig{}
		require.NoError(t, sup.Get(ctx, client.ObjectKey{Name: h.KubevirtConfig}, kvc))
		rv := kvc.ResourceVersion
		s.must(t, nil, s.acts.RecordClusterHealth, h)
		require.NoError(t, sup.Get(ctx, client.ObjectKey{Name: h.KubevirtConfig}, kvc))
		require.Equal(t, rv, kvc.ResourceVersion, "unchanged health is not written")
		if h.Healthy {
			require.Equal(t, v1alpha1.KubevirtConfigStatus{Phase: "Ready", Status: "Healthy", Message: "connection validated"}, kvc.Status)
		} else {
			require.Equal(t, "NotReady", kvc.Status.Phase)
			require.Equal(t, h.Reason, kvc.Status.Message)
		}
	}
	s.must(t, nil, s.acts.RecordClusterHealth, contract.ClusterHealth{KubevirtConfig: "deleted-meanwhile", Healthy: true})

	// Duration and CheckedAt come from the injected clock.
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	acts, err := New(Deps{Clients: s.clients, Supervisor: sup, Settings: s.settings, Clock: steppingClock(t0, 250*time.Millisecond)})
	require.NoError(t, err)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	var timed contract.ClusterHealth
	require.NoError(t, s.exec(t, env, &timed, acts.CheckCluster, contract.ClusterRef{KubevirtConfig: "a-unreachable"}))
	require.False(t, timed.Healthy)
	require.Contains(t, timed.Reason, contract.ErrTypeClusterUnreachable)
	require.Equal(t, 250*time.Millisecond, timed.Duration)
	require.True(t, timed.CheckedAt.Equal(t0))
}
