package vmplan

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// Bounds a plan must keep whatever the Machine and its MachineClass say:
// the Machine's own CPU bounds (planResources), KubeVirt's smallest useful
// guest, 802.1Q VLAN ids and the largest disk (maxDiskSizeGB).
const (
	fuzzMaxCores, fuzzMaxSockets, fuzzMaxThreads = 256, 16, 8
	fuzzMinMemory                                = 1 << 20
	fuzzMaxVLAN                                  = 4094
)

// FuzzBuildVirtualMachine plans Machines, with a MachineClass and a
// NetworkNamespace, that the supervisor's API server would store (valid
// names and annotations, anything the Go types allow elsewhere) and builds
// every object the plan makes on a KubeVirt cluster. Either planning
// refuses the Machine with a final InvalidMachineSpec error that names the
// Machine and the field and quotes no credential, or the plan survives
// history (JSON) and builds objects the cluster's API server accepts:
// valid names, labels and annotations, positive sizes, a bounded CPU
// topology and a real VLAN id. Nothing may panic.
func FuzzBuildVirtualMachine(f *testing.F) {
	f.Fuzz(func(t *testing.T, name, namespace string, memory int64, cores, sockets, threads int,
		disks uint8, disk0Name string, disk0SizeGB int64, disk0Type string, disk0Boot bool,
		disk1Name string, disk1SizeGB int64, disk1Boot bool,
		classMemory string, classEnabled bool, classCores, classSockets, classThreads uint,
		withNetns bool, vlanID int, staticCIDR string,
		imageID string, isoBoot bool, isoSourceType string, vmAnnotation, userDataBase64 string,
	) {
		machine := &v1alpha1.Machine{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: 1},
			Spec: v1alpha1.MachineSpec{
				Memory: memory,
				CPU:    v1alpha1.MachineCPU{Cores: cores, Sockets: sockets, ThreadsPerCore: threads},
				OS:     v1alpha1.MachineOS{ImageID: imageID},
			},
		}
		d0 := v1alpha1.MachineSpecDisk{Name: disk0Name, SizeGB: disk0SizeGB, Type: disk0Type, Boot: disk0Boot}
		d1 := v1alpha1.MachineSpecDisk{Name: disk1Name, SizeGB: disk1SizeGB, Boot: disk1Boot}
		// 3 repeats the first disk, for duplicate names and boot flags.
		machine.Spec.Disks = [][]v1alpha1.MachineSpecDisk{nil, {d0}, {d0, d1}, {d0, d1, d0}}[disks%4]
		annotations := map[string]string{names.VMAnnotationPrefix + "hint": vmAnnotation}
		if isoBoot {
			annotations[names.BootSourceAnnotation] = names.BootSourceDataVolume
			annotations[names.BootSourceTypeAnnotation] = isoSourceType
		}
		machine.Annotations = annotations
		if userDataBase64 != "" {
			machine.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserDataBase64: userDataBase64}
		}
		if !storable(machine) {
			return
		}

		var class *v1alpha1.MachineClass
		if classMemory != "" {
			q, err := resource.ParseQuantity(classMemory)
			if err != nil {
				return // the API server refuses a MachineClass with it
			}
			class = &v1alpha1.MachineClass{
				ObjectMeta: metav1.ObjectMeta{Name: "fuzz-class"},
				Spec: v1alpha1.MachineClassSpec{
					Enabled: classEnabled,
					Memory:  v1alpha1.MachineClassMemorySpec{Quantity: q},
					CPU:     v1alpha1.MachineClassCPUSpec{Cores: classCores, Sockets: classSockets, Threads: classThreads},
				},
			}
			machine.Spec.MachineClass = class.Name
		}
		var netns *v1alpha1.NetworkNamespace
		if withNetns {
			netns = &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "fuzz-net"}}
			netns.Status.VlanID = vlanID
			if staticCIDR != "" {
				netns.Spec.IPAllocation = &v1alpha1.NetworkNamespaceIPAllocation{
					Type:   v1alpha1.IPAllocationTypeStatic,
					Static: &v1alpha1.StaticIPAllocationConfig{IPv4CIDR: staticCIDR},
				}
			}
		}

		plan, err := Plan(machine, class, netns)
		if err != nil {
			requireClearRefusal(t, err, machine, userDataBase64, urlPassword(imageID))
			return
		}
		requirePlanSurvivesHistory(t, plan)
		image, err := BootImage(machine, plan.Boot)
		require.NoError(t, err, "the Machine boots as planned")

		in := VMInput{
			Plan:               plan,
			Network:            contract.NetworkResult{NetworkName: PodNetworkName, MACAddress: "02:12:00:00:00:01"},
			CPUModel:           "host-model",
			ImageURL:           image,
			ISOSize:            ISOSize(1),
			ISOAccessMode:      corev1.ReadWriteOnce,
			MachineAnnotations: machine.Annotations,
		}
		objects := map[string]metav1.Object{}
		if !plan.Network.PodNetwork {
			nad, err := BuildNAD(plan.Machine, plan.Network.VLANID, "0.3.1")
			require.NoError(t, err)
			requireVLAN(t, nad.Object)
			objects["NetworkAttachmentDefinition"] = nad
			in.Network.NetworkName, in.Network.NADName = nad.GetName(), nad.GetName()
		}
		if plan.CloudInit {
			in.CloudInit = &CloudInitData{UserData: NoopUserData}
			secret, err := BuildCloudInitSecret(plan.Machine, *in.CloudInit)
			require.NoError(t, err)
			objects["Secret"] = secret
		}
		vm, err := BuildVirtualMachine(in)
		require.NoError(t, err, "a plan LoadMachine accepted must build")
		objects["VirtualMachine"] = vm
		requireDomain(t, vm, plan)
		requireAdmitted(t, vm)
		for i, dv := range vm.Spec.DataVolumeTemplates {
			objects[fmt.Sprintf("DataVolume %d", i)] = &dv.ObjectMeta
		}
		for i, d := range plan.Disks {
			size, err := resource.ParseQuantity(d.Size)
			require.NoError(t, err, "disk %d size %q", i, d.Size)
			require.Positive(t, size.Sign(), "disk %d size %q", i, d.Size)
			require.LessOrEqual(t, size.Value(), int64(maxDiskSizeGB)<<30, "disk %d size %q", i, d.Size)
			objects[fmt.Sprintf("PersistentVolumeClaim %d", i)] = BuildPVC(plan.Machine, d, size, "standard", "Block", "ReadWriteOnce")
		}
		for kind, obj := range objects {
			requireStorableMeta(t, kind, obj)
		}
	})
}

// storable says whether the supervisor's API server would store the
// Machine: a DNS-1123 subdomain name in a DNS-1123 label namespace, with
// valid annotations.
func storable(m *v1alpha1.Machine) bool {
	return len(validation.IsDNS1123Subdomain(m.Name)) == 0 &&
		len(validation.IsDNS1123Label(m.Namespace)) == 0 &&
		len(apivalidation.ValidateAnnotations(m.Annotations, field.NewPath("metadata", "annotations"))) == 0
}

// requireClearRefusal: a refused Machine fails for good, with a message
// that leads with the Machine and the field and quotes neither the
// cloud-init payload nor the image URL's password.
func requireClearRefusal(t *testing.T, err error, m *v1alpha1.Machine, secrets ...string) {
	t.Helper()
	specErr := requireSpecError(t, err)
	msg := specErr.Message
	prefix := fmt.Sprintf("Machine %s/%s: ", m.Namespace, m.Name)
	require.True(t, strings.HasPrefix(msg, prefix), "message does not lead with the Machine: %q", msg)
	rest := strings.TrimPrefix(msg, prefix)
	require.True(t, strings.HasPrefix(rest, "spec.") || strings.HasPrefix(rest, "metadata."), "message names no field: %q", msg)
	for _, s := range secrets {
		// Short or common strings may be in the message for other reasons.
		if len(s) >= 8 && !strings.Contains(prefix, s) {
			require.NotContains(t, rest, s, "message quotes a credential or payload")
		}
	}
}

// urlPassword is the password in an image URL, "" when it has none or it
// also shows in the URL without it (where a message may quote it).
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, ok := u.User.Password()
	if !ok || strings.Contains(u.Redacted(), p) {
		return ""
	}
	return p
}

// requirePlanSurvivesHistory: the plan is an activity result, so it must
// decode from its JSON to itself.
func requirePlanSurvivesHistory(t *testing.T, plan contract.MachinePlan) {
	t.Helper()
	b, err := json.Marshal(plan)
	require.NoError(t, err)
	var back contract.MachinePlan
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, plan, back)
}

// requireDomain checks what KubeVirt checks of the VM's domain: memory of
// at least 1Mi, a CPU topology within the Machine's bounds, and disks and
// volumes that pair up under unique DNS-1123 label names.
func requireDomain(t *testing.T, vm *kubevirtv1.VirtualMachine, plan contract.MachinePlan) {
	t.Helper()
	spec := vm.Spec.Template.Spec
	domain := spec.Domain
	require.GreaterOrEqual(t, domain.Memory.Guest.Value(), int64(fuzzMinMemory), "guest memory %s", domain.Memory.Guest)
	cpu := domain.CPU
	require.LessOrEqual(t, cpu.Cores, uint32(fuzzMaxCores), "cores")
	require.True(t, cpu.Sockets >= 1 && cpu.Sockets <= fuzzMaxSockets, "sockets %d", cpu.Sockets)
	require.True(t, cpu.Threads >= 1 && cpu.Threads <= fuzzMaxThreads, "threads %d", cpu.Threads)

	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		require.Empty(t, validation.IsDNS1123Label(v.Name), "volume name %q", v.Name)
		require.False(t, volumes[v.Name], "volume name %q twice", v.Name)
		volumes[v.Name] = true
	}
	disks := map[string]bool{}
	for _, d := range domain.Devices.Disks {
		require.True(t, volumes[d.Name], "disk %q has no volume", d.Name)
		require.False(t, disks[d.Name], "disk name %q twice", d.Name)
		disks[d.Name] = true
	}
	require.Len(t, disks, len(volumes), "every volume is a disk")
	require.Len(t, plan.Disks, len(disks)-btoi(plan.Boot.ISO)-btoi(plan.CloudInit), "one disk per planned disk")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// requireVLAN: the bridge CNI plugin takes VLAN ids 0 (untagged) to 4094.
func requireVLAN(t *testing.T, nad map[string]any) {
	t.Helper()
	raw, _ := nad["spec"].(map[string]any)["config"].(string)
	var cfg cniConfig
	require.NoError(t, json.Unmarshal([]byte(raw), &cfg))
	for _, p := range cfg.Plugins {
		require.True(t, p.VLAN >= 0 && p.VLAN <= fuzzMaxVLAN, "VLAN %d", p.VLAN)
	}
}

// requireStorableMeta: the KubeVirt cluster's API server would accept the
// object's name, labels and annotations.
func requireStorableMeta(t *testing.T, kind string, obj metav1.Object) {
	t.Helper()
	require.Empty(t, validation.IsDNS1123Subdomain(obj.GetName()), "%s name %q", kind, obj.GetName())
	path := field.NewPath("metadata")
	errs := metavalidation.ValidateLabels(obj.GetLabels(), path.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(obj.GetAnnotations(), path.Child("annotations"))...)
	require.NoError(t, errs.ToAggregate(), "%s %q", kind, obj.GetName())
}
