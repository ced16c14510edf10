package activities

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/testsuite"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/vmplan"
)

func TestISOCleanupTriggers(t *testing.T) {
	for _, tc := range []struct {
		annotations        map[string]string
		triggered, pending bool
	}{
		{nil, false, false},
		{map[string]string{names.CDROMEjectedAnnotation: "true"}, true, true},
		{map[string]string{names.OSInstalledAnnotation: "true"}, true, true},
		{map[string]string{names.OSInstalledAnnotation: "yes"}, false, false},
		{map[string]string{names.CDROMEjectedAnnotation: "false", names.OSInstalledAnnotation: "true", names.ISOCleanedUpAnnotation: "true"}, true, false},
		{map[string]string{names.ISOCleanedUpAnnotation: "true"}, false, false},
	} {
		require.Equal(t, tc.triggered, names.ISOCleanupTriggered(tc.annotations), "%v", tc.annotations)
		require.Equal(t, tc.pending, names.ISOCleanupPending(tc.annotations), "%v", tc.annotations)
	}
}

// specInput is a VM of a Machine with a boot and a data disk on the pod
// network.
func specInput(ref contract.MachineRef) vmplan.VMInput {
	return vmplan.VMInput{
		Plan:          testPlan(ref),
		Network:       contract.NetworkResult{NetworkName: vmplan.PodNetworkName, MACAddress: "02:12:aa:bb:cc:dd"},
		ISOSize:       resource.MustParse("1Gi"),
		ISOAccessMode: corev1.ReadWriteOnce,
	}
}

func TestISORemoval(t *testing.T) {
	in := specInput(contract.MachineRef{Namespace: "ns1", Name: "vm1"})
	in.Plan.Boot = contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "http"}
	in.ImageURL = "http://images/os.iso"
	in.CloudInit = &vmplan.CloudInitData{UserData: "#cloud-config\n"}
	vm, err := vmplan.BuildVirtualMachine(in)
	require.NoError(t, err)
	// root, data, cdrom-iso, cloudinitdisk: the ISO is in the middle.
	require.Equal(t, vmplan.CDROMDiskName, vm.Spec.Template.Spec.Domain.Devices.Disks[2].Name)

	ops := isoRemoval(vm)
	require.Equal(t, []jsonPatchOp{
		{"test", "/spec/dataVolumeTemplates/0/metadata/name", "vm1-iso"}, {"remove", "/spec/dataVolumeTemplates/0", ""},
		{"test", "/spec/template/spec/domain/devices/disks/2/name", "cdrom-iso"}, {"remove", "/spec/template/spec/domain/devices/disks/2", ""},
		{"test", "/spec/template/spec/volumes/2/name", "cdrom-iso"}, {"remove", "/spec/template/spec/volumes/2", ""},
	}, ops)
	raw, err := json.Marshal(ops[1])
	require.NoError(t, err)
	require.JSONEq(t, `{"op":"remove","path":"/spec/dataVolumeTemplates/0"}`, string(raw), "remove carries no value")

	plain := specInput(contract.MachineRef{Namespace: "ns1", Name: "vm1"})
	vm, err = vmplan.BuildVirtualMachine(plain)
	require.NoError(t, err)
	require.Empty(t, isoRemoval(vm), "a VM without an ISO needs no patch")
	require.Empty(t, isoRemoval(&kubevirtv1.VirtualMachine{}), "nor does a VM without a template")
}

// TestCleanupISO runs CleanupISO against the harness: a VM booted from an
// ISO by the Ensure activities, the DataVolume and claim KubeVirt and CDI
// would make for it, and the trigger annotations.
func TestCleanupISO(t *testing.T) {
	s := newSuite(t)
	ctx := t.Context()
	cluster := testenv.ClusterName(1)
	sup, remote := s.env.Supervisor.Client, s.cluster(cluster)
	ns := s.namespace(t, "iso-cleanup")
	ref := s.machine(t, ns, "inst", func(m *v1alpha1.Machine) {
		m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume, "team.example/owner": "ops"}
		m.Spec.OS.ImageID = s.iso.URL + "/os.iso"
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\n"}
	})
	rm := contract.RemoteMachine{KubevirtConfig: cluster, Machine: ref}
	provisionISOMachine(t, s, rm)
	vmKey := client.ObjectKey{Namespace: ns, Name: "inst"}
	isoKey := client.ObjectKey{Namespace: ns, Name: "inst-iso"}

	// What KubeVirt and CDI would make from the DataVolumeTemplate: the
	// DataVolume (our labels, owned by the VM) and its claim (owned by the
	// DataVolume, without our labels).
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, remote.Get(ctx, vmKey, vm))
	dv := &unstructured.Unstructured{}
	dv.SetAPIVersion("cdi.kubevirt.io/v1beta1")
	dv.SetKind("DataVolume")
	dv.SetNamespace(ns)
	dv.SetName(isoKey.Name)
	dv.SetLabels(names.ManagedLabels("inst"))
	dv.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "kubevirt.io/v1", Kind: "VirtualMachine", Name: "inst", UID: vm.UID}})
	require.NoError(t, unstructured.SetNestedField(dv.Object, map[string]any{"http": map[string]any{"url": s.iso.URL + "/os.iso"}}, "spec", "source"))
	require.NoError(t, unstructured.SetNestedField(dv.Object, map[string]any{"resources": map[string]any{"requests": map[string]any{"storage": "4Gi"}}}, "spec", "storage"))
	s.create(t, remote, dv)
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: isoKey.Name, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "cdi.kubevirt.io/v1beta1", Kind: "DataVolume", Name: isoKey.Name, UID: dv.GetUID()}}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("4Gi")}},
		},
	}
	s.create(t, remote, pvc)

	// A field machineflow never sets, written by someone else on an entry
	// the cleanup keeps: a patch built from the VM machineflow wants would
	// drop it. (KubeVirt's CRD schema prunes fields it does not know, so
	// this is a known one.)
	addFuture := []byte(`[{"op":"add","path":"/spec/template/spec/domain/devices/disks/0/serial","value":"kept"}]`)
	require.NoError(t, remote.Patch(ctx, &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "inst"}},
		client.RawPatch(types.JSONPatchType, addFuture)))

	t.Run("refused without a trigger annotation", func(t *testing.T) {
		appErr := requireAppError(t, s.run(t, nil, s.acts.CleanupISO, rm), contract.ErrTypeInvalidSpec, true)
		require.Contains(t, appErr.Message(), "Machine iso-cleanup/inst: metadata.annotations: neither vitistack.io/cdrom-ejected nor vitistack.io/os-installed")
		require.Equal(t, []string{"root", vmplan.CDROMDiskName, vmplan.CloudInitDiskName}, vmDisks(t, s, rm), "the VM is untouched")
	})

	annotate(t, s, ref, names.OSInstalledAnnotation, "true")

	t.Run("a patch built before the VM changed is refused by its tests", func(t *testing.T) {
		stale := &kubevirtv1.VirtualMachine{}
		require.NoError(t, remote.Get(ctx, vmKey, stale))
		insertScratch := []byte(`[{"op":"add","path":"/spec/template/spec/domain/devices/disks/0","value":{"name":"scratch","disk":{"bus":"virtio"}}},` +
			`{"op":"add","path":"/spec/template/spec/volumes/0","value":{"name":"scratch","emptyDisk":{"capacity":"1Gi"}}}]`)
		require.NoError(t, remote.Patch(ctx, stale.DeepCopy(), client.RawPatch(types.JSONPatchType, insertScratch)))
		body, err := json.Marshal(isoRemoval(stale))
		require.NoError(t, err)
		err = remote.Patch(ctx, stale, client.RawPatch(types.JSONPatchType, body))
		require.True(t, apierrors.IsInvalid(err), "the stale indices point at other entries now: %v", err)
		require.Equal(t, []string{"scratch", "root", "cdrom-iso", "cloudinitdisk"}, vmDisks(t, s, rm))
	})

	var before kubevirtv1.VirtualMachine
	require.NoError(t, remote.Get(ctx, vmKey, &before))
	var res contract.DeleteResult
	s.must(t, &res, s.acts.CleanupISO, rm)
	require.Equal(t, []string{
		"ISO cdrom-iso of VirtualMachine iso-cleanup/inst on " + cluster,
		"DataVolume iso-cleanup/inst-iso on " + cluster,
		"PersistentVolumeClaim iso-cleanup/inst-iso on " + cluster,
	}, res.Deleted)

	after := &kubevirtv1.VirtualMachine{}
	require.NoError(t, remote.Get(ctx, vmKey, after))
	require.Empty(t, after.Spec.DataVolumeTemplates)
	want := before.Spec.Template.Spec.DeepCopy()
	want.Domain.Devices.Disks = append(want.Domain.Devices.Disks[:2:2], want.Domain.Devices.Disks[3])
	want.Volumes = append(want.Volumes[:2:2], want.Volumes[3])
	require.Equal(t, *want, after.Spec.Template.Spec, "everything but the ISO is kept, in order")
	require.Equal(t, before.Spec.RunStrategy, after.Spec.RunStrategy)
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kubevirtv1.VirtualMachineGroupVersionKind)
	require.NoError(t, remote.Get(ctx, vmKey, u))
	disks, _, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "domain", "devices", "disks")
	require.NoError(t, err)
	require.Equal(t, "kept", disks[1].(map[string]any)["serial"], "a field someone else set survives")

	requireGoneOrTerminating(t, remote, isoKey, dv.DeepCopy())
	requireGoneOrTerminating(t, remote, isoKey, &corev1.PersistentVolumeClaim{})
	m := &v1alpha1.Machine{}
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "inst"}, m))
	require.Equal(t, "true", m.Annotations[names.ISOCleanedUpAnnotation])
	require.Equal(t, "ops", m.Annotations["team.example/owner"], "other annotations are kept")

	t.Run("a second run changes nothing", func(t *testing.T) {
		require.NoError(t, remote.Get(ctx, vmKey, after))
		require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "inst"}, m))
		var again contract.DeleteResult
		s.must(t, &again, s.acts.CleanupISO, rm)
		require.Empty(t, again.Deleted)
		requireSameGeneration(t, remote, after)
		requireUnchanged(t, sup, m)
	})

	t.Run("the annotation is written even when the VM already lost its ISO", func(t *testing.T) {
		base := m.DeepCopy()
		delete(m.Annotations, names.ISOCleanedUpAnnotation)
		m.Annotations[names.CDROMEjectedAnnotation] = "true"
		require.NoError(t, sup.Patch(ctx, m, client.MergeFrom(base)))
		var again contract.DeleteResult
		s.must(t, &again, s.acts.CleanupISO, rm)
		require.Empty(t, again.Deleted, "the DataVolume and claim are already gone or terminating")
		require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "inst"}, m))
		require.Equal(t, "true", m.Annotations[names.ISOCleanedUpAnnotation])
	})

	t.Run("objects that are not ours are left alone", func(t *testing.T) {
		foreignRef := s.machine(t, ns, "foreign", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{names.CDROMEjectedAnnotation: "true"}
		})
		foreign := contract.RemoteMachine{KubevirtConfig: cluster, Machine: foreignRef}
		fvm := kubevirtadmission.MinimalVM(ns, "foreign")
		fvm.Spec.Template.Spec.Domain.Devices.Disks = []kubevirtv1.Disk{
			{Name: vmplan.CDROMDiskName, DiskDevice: kubevirtv1.DiskDevice{CDRom: &kubevirtv1.CDRomTarget{Bus: vmplan.BusSATA}}}}
		fvm.Spec.Template.Spec.Volumes = []kubevirtv1.Volume{{Name: vmplan.CDROMDiskName, VolumeSource: kubevirtv1.VolumeSource{
			PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: "foreign-iso"}}}}}
		s.create(t, remote, fvm)
		appErr := requireAppError(t, s.run(t, nil, s.acts.CleanupISO, foreign), contract.ErrTypeConflict, true)
		require.Contains(t, appErr.Message(), "VirtualMachine iso-cleanup/foreign on "+cluster+" exists and is not managed by machineflow")
		requireSameGeneration(t, remote, fvm)
		fm := &v1alpha1.Machine{}
		require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "foreign"}, fm))
		require.NotContains(t, fm.Annotations, names.ISOCleanedUpAnnotation)

		// Without a VM, only our DataVolume and claim would go: an
		// unlabelled claim of the ISO's name is someone else's.
		bareRef := s.machine(t, ns, "bare", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{names.CDROMEjectedAnnotation: "true"}
		})
		barePVC := pvc.DeepCopy()
		barePVC.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "bare-iso"}
		s.create(t, remote, barePVC)
		var res contract.DeleteResult
		s.must(t, &res, s.acts.CleanupISO, contract.RemoteMachine{KubevirtConfig: cluster, Machine: bareRef})
		require.Empty(t, res.Deleted)
		requireUnchanged(t, remote, barePVC)
		require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bare"}, fm))
		require.Equal(t, "true", fm.Annotations[names.ISOCleanedUpAnnotation])
	})

	t.Run("a VM that changes between read and patch is read again", func(t *testing.T) {
		raceRef := s.machine(t, ns, "racer", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume, names.CDROMEjectedAnnotation: "true"}
			m.Spec.OS.ImageID = s.iso.URL + "/os.iso"
			m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\n"}
		})
		race := contract.RemoteMachine{KubevirtConfig: cluster, Machine: raceRef}
		provisionISOMachine(t, s, race)
		racing := &racingClient{Client: remote, before: func(obj client.Object) error {
			// Someone adds a disk in front, shifting the ISO's index.
			return remote.Patch(ctx, obj.DeepCopyObject().(client.Object), client.RawPatch(types.JSONPatchType, []byte(
				`[{"op":"add","path":"/spec/template/spec/domain/devices/disks/0","value":{"name":"hotplug","disk":{"bus":"scsi"}}},`+
					`{"op":"add","path":"/spec/template/spec/volumes/0","value":{"name":"hotplug","emptyDisk":{"capacity":"1Gi"}}}]`)))
		}}
		cm := clients.NewMockClientManager()
		cm.AddMockedClient(cluster, racing)
		acts, err := New(Deps{Clients: cm, Supervisor: sup, Settings: s.settings})
		require.NoError(t, err)
		env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
		env.RegisterActivity(acts)
		var res contract.DeleteResult
		require.NoError(t, s.exec(t, env, &res, acts.CleanupISO, race))
		require.Equal(t, "ISO cdrom-iso of VirtualMachine iso-cleanup/racer on "+cluster, res.Deleted[0])
		require.Equal(t, 2, racing.patches, "the first patch failed its tests, the second was built from a fresh read")
		require.Equal(t, []string{"hotplug", "root", vmplan.CloudInitDiskName}, vmDisks(t, s, race))
	})

	t.Run("a Machine that is gone needs nothing", func(t *testing.T) {
		var res contract.DeleteResult
		s.must(t, &res, s.acts.CleanupISO, contract.RemoteMachine{KubevirtConfig: cluster, Machine: contract.MachineRef{Namespace: ns, Name: "gone"}})
		require.Empty(t, res.Deleted)
	})

	t.Run("an unknown KubevirtConfig is final", func(t *testing.T) {
		requireAppError(t, s.run(t, nil, s.acts.CleanupISO, contract.RemoteMachine{KubevirtConfig: "no-such-config", Machine: ref}), contract.ErrTypeConfigNotFound, true)
	})
}

// racingClient runs before ahead of the first Patch it forwards, to change
// the object between the caller's read and its write.
type racingClient struct {
	client.Client
	before  func(obj client.Object) error
	patches int
}

func (c *racingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.patches++
	if c.patches == 1 {
		if err := c.before(obj); err != nil {
			return err
		}
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}

// provisionISOMachine creates a Machine's VM with the Ensure activities.
func provisionISOMachine(t *testing.T, s *suite, rm contract.RemoteMachine) {
	t.Helper()
	var plan contract.MachinePlan
	s.must(t, &plan, s.acts.LoadMachine, rm.Machine)
	require.True(t, plan.Boot.ISO)
	s.must(t, nil, s.acts.EnsureNamespace, rm)
	s.must(t, nil, s.acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: rm.KubevirtConfig, Machine: rm.Machine, Disks: plan.Disks})
	var net contract.NetworkResult
	s.must(t, &net, s.acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: rm.KubevirtConfig, Machine: rm.Machine, Network: plan.Network})
	s.must(t, nil, s.acts.EnsureVirtualMachine, contract.VirtualMachineInput{KubevirtConfig: rm.KubevirtConfig, Plan: plan, Network: net})
	require.Equal(t, []string{"root", vmplan.CDROMDiskName, vmplan.CloudInitDiskName}, vmDisks(t, s, rm))
}

func vmDisks(t *testing.T, s *suite, rm contract.RemoteMachine) []string {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, s.cluster(rm.KubevirtConfig).Get(t.Context(), client.ObjectKey{Namespace: rm.Machine.Namespace, Name: rm.Machine.Name}, vm))
	var out []string
	for _, d := range vm.Spec.Template.Spec.Domain.Devices.Disks {
		out = append(out, d.Name)
	}
	return out
}

func annotate(t *testing.T, s *suite, ref contract.MachineRef, key, value string) {
	t.Helper()
	m := &v1alpha1.Machine{}
	require.NoError(t, s.env.Supervisor.Client.Get(t.Context(), client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, m))
	base := m.DeepCopy()
	metav1.SetMetaDataAnnotation(&m.ObjectMeta, key, value)
	require.NoError(t, s.env.Supervisor.Client.Patch(t.Context(), m, client.MergeFrom(base)))
}

// requireGoneOrTerminating: envtest runs no garbage collector and keeps
// claims with their protection finalizer, so a deleted object may linger.
func requireGoneOrTerminating(t *testing.T, c client.Client, key client.ObjectKey, obj client.Object) {
	t.Helper()
	err := c.Get(t.Context(), key, obj)
	if apierrors.IsNotFound(err) {
		return
	}
	require.NoError(t, err)
	require.NotNil(t, obj.GetDeletionTimestamp(), "%T %s is neither gone nor terminating", obj, key)
}

// requireSameGeneration says obj's spec was not written since it was read
// (the simulator writes VMs' finalizers and status meanwhile).
func requireSameGeneration(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	now := obj.DeepCopyObject().(client.Object)
	require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(obj), now))
	require.Equal(t, obj.GetGeneration(), now.GetGeneration(), "the spec of %T %s was written", obj, obj.GetName())
}

// requireUnchanged says obj was not written since it was read.
func requireUnchanged(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	now := obj.DeepCopyObject().(client.Object)
	require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(obj), now))
	require.Equal(t, obj.GetResourceVersion(), now.GetResourceVersion(), "%T %s was written", obj, obj.GetName())
}
