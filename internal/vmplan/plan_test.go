package vmplan

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

func testMachine() *v1alpha1.Machine {
	return &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "vm1", Generation: 3}}
}

func enabledClass() *v1alpha1.MachineClass {
	return &v1alpha1.MachineClass{
		ObjectMeta: metav1.ObjectMeta{Name: "medium"},
		Spec: v1alpha1.MachineClassSpec{
			Enabled: true,
			Memory:  v1alpha1.MachineClassMemorySpec{Quantity: resource.MustParse("8Gi")},
			CPU:     v1alpha1.MachineClassCPUSpec{Cores: 4, Sockets: 2, Threads: 2},
		},
	}
}

func TestPlanMachine(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *v1alpha1.Machine)
		class  *v1alpha1.MachineClass
		netns  *v1alpha1.NetworkNamespace
		check  func(t *testing.T, p contract.MachinePlan)
	}{
		{name: "defaults 2Gi, 2 cores, 1 socket, 1 thread without a class", check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.CPUPlan{Cores: 2, Sockets: 1, Threads: 1}, p.CPU)
			require.Equal(t, "2Gi", p.Memory)
			require.Equal(t, contract.MachineRef{Namespace: "ns1", Name: "vm1"}, p.Machine)
			require.Equal(t, int64(3), p.Generation)
		}},
		{name: "one 10Gi root disk on PVC <vm> booting first when no disks are given", check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, []contract.DiskPlan{{Name: "root", PVCName: "vm1", Size: "10Gi", Bus: "virtio", BootOrder: 1}}, p.Disks)
		}},
		{name: "MachineClass memory and cpu", class: enabledClass(), check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.CPUPlan{Cores: 4, Sockets: 2, Threads: 2}, p.CPU)
			require.Equal(t, "8Gi", p.Memory)
		}},
		{name: "MachineClass cores 0 kept, sockets and threads only when > 0", class: func() *v1alpha1.MachineClass {
			c := enabledClass()
			c.Spec.CPU = v1alpha1.MachineClassCPUSpec{}
			return c
		}(), check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.CPUPlan{Cores: 0, Sockets: 1, Threads: 1}, p.CPU)
		}},
		{name: "Machine cpu and memory override the class, memory truncated to Mi", class: enabledClass(), mutate: func(m *v1alpha1.Machine) {
			m.Spec.CPU = v1alpha1.MachineCPU{Cores: 8, ThreadsPerCore: 1}
			m.Spec.Memory = 3<<30 + 12345
		}, check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.CPUPlan{Cores: 8, Sockets: 2, Threads: 1}, p.CPU)
			require.Equal(t, "3Gi", p.Memory)
		}},
		{name: "disk naming, PVC naming, Gi sizing and bus", mutate: func(m *v1alpha1.Machine) {
			m.Spec.Disks = []v1alpha1.MachineSpecDisk{
				{SizeGB: 20, Boot: true},
				{Name: "data", SizeGB: 5, Type: "sata"},
				{SizeGB: 1, Type: "scsi"},
				{SizeGB: 2, Type: "gp3"},
			}
		}, check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, []contract.DiskPlan{
				{Name: "root", PVCName: "vm1", Size: "20Gi", Bus: "virtio", BootOrder: 1},
				{Name: "data", PVCName: "vm1-data", Size: "5Gi", Bus: "sata"},
				{Name: "disk2", PVCName: "vm1-disk2", Size: "1Gi", Bus: "scsi"},
				{Name: "disk3", PVCName: "vm1-disk3", Size: "2Gi", Bus: "virtio"},
			}, p.Disks)
		}},
		{name: "unnamed first disk that does not boot is root on PVC <vm>-disk0", mutate: func(m *v1alpha1.Machine) {
			m.Spec.Disks = []v1alpha1.MachineSpecDisk{{SizeGB: 4}}
		}, check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, []contract.DiskPlan{{Name: "root", PVCName: "vm1-disk0", Size: "4Gi", Bus: "virtio"}}, p.Disks)
		}},
		{name: "pod network without a NetworkNamespace", check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.NetworkPlan{PodNetwork: true}, p.Network)
		}},
		{name: "bridge NAD for a VLAN id", netns: netNS("nn", 42, ""), check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.NetworkPlan{NetworkNamespace: "nn", VLANID: 42}, p.Network)
		}},
		{name: "pod network for DHCP without a VLAN id", netns: netNS("nn", 0, v1alpha1.IPAllocationTypeDHCP), check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.NetworkPlan{NetworkNamespace: "nn", PodNetwork: true}, p.Network)
		}},
		{name: "untagged bridge for static allocation without a VLAN id", netns: netNS("nn", 0, v1alpha1.IPAllocationTypeStatic), check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.NetworkPlan{NetworkNamespace: "nn", Static: true}, p.Network)
		}},
		{name: "a 63-character name, the longest label value", mutate: func(m *v1alpha1.Machine) { m.Name = strings.Repeat("a", 63) },
			check: func(t *testing.T, p contract.MachinePlan) {
				require.Equal(t, strings.Repeat("a", 63), p.Disks[0].PVCName)
			}},
		{name: "PXE plan without an image", check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.BootPlan{}, p.Boot)
		}},
		{name: "ISO boot with the boot-source annotation and an imageID, http by default", mutate: func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume}
			m.Spec.OS.ImageID = "https://img.example/os.iso"
		}, check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "http"}, p.Boot)
		}},
		{name: "imageID without the annotation is no ISO boot", mutate: func(m *v1alpha1.Machine) {
			m.Spec.OS.ImageID = "https://img.example/os.iso"
		}, check: func(t *testing.T, p contract.MachinePlan) {
			require.Equal(t, contract.BootPlan{HasImage: true}, p.Boot)
		}},
		{name: "cloudInit flag without payload", mutate: func(m *v1alpha1.Machine) {
			m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\n"}
		}, check: func(t *testing.T, p contract.MachinePlan) {
			require.True(t, p.CloudInit)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testMachine()
			if tc.mutate != nil {
				tc.mutate(m)
			}
			p, err := Plan(m, tc.class, tc.netns)
			require.NoError(t, err)
			tc.check(t, p)
		})
	}
}

func netNS(name string, vlan int, alloc v1alpha1.IPAllocationType) *v1alpha1.NetworkNamespace {
	nn := &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: name}}
	nn.Status.VlanID = vlan
	if alloc != "" {
		nn.Spec.IPAllocation = &v1alpha1.NetworkNamespaceIPAllocation{Type: alloc}
	}
	return nn
}

func TestPlanMachineRejectsInvalidSpecs(t *testing.T) {
	disabled := enabledClass()
	disabled.Spec.Enabled = false
	badCIDR := netNS("nn", 0, v1alpha1.IPAllocationTypeStatic)
	badCIDR.Spec.IPAllocation.Static = &v1alpha1.StaticIPAllocationConfig{IPv4CIDR: "10.0.0.0/99"}
	tinyClass := enabledClass()
	tinyClass.Spec.Memory.Quantity = resource.MustParse("0.5")
	hugeClass := enabledClass()
	hugeClass.Spec.CPU.Cores = 1 << 32
	tests := []struct {
		name    string
		mutate  func(m *v1alpha1.Machine)
		class   *v1alpha1.MachineClass
		netns   *v1alpha1.NetworkNamespace
		message string
	}{
		{"name longer than a label value", func(m *v1alpha1.Machine) { m.Name = strings.Repeat("a", 64) }, nil, nil,
			"metadata.name: must be no more than 63 bytes: the name is the VM's and the value of label vitistack.io/source-machine"},
		{"disabled MachineClass", nil, disabled, nil, `spec.machineClass: MachineClass "medium" is not enabled`},
		{"MachineClass memory below 1Mi", nil, tinyClass, nil, `spec.machineClass: MachineClass "medium" spec.memory.quantity: 500m is less than 1Mi`},
		{"MachineClass cores that would wrap around", nil, hugeClass, nil, `spec.machineClass: MachineClass "medium" spec.cpu.cores: 4294967296 is out of range 0..256`},
		{"VLAN id above 4094", nil, nil, netNS("nn", 4095, ""), `spec.network.networkNamespaceName: NetworkNamespace "nn" status.vlanId 4095 is not a VLAN id (at most 4094)`},
		{"disk size 0", func(m *v1alpha1.Machine) {
			m.Spec.Disks = []v1alpha1.MachineSpecDisk{{SizeGB: 1}, {SizeGB: 0}}
		}, nil, nil, "spec.disks[1].sizeGB: must be > 0"},
		{"two boot disks", func(m *v1alpha1.Machine) {
			m.Spec.Disks = []v1alpha1.MachineSpecDisk{{SizeGB: 1, Boot: true}, {Name: "b", SizeGB: 1, Boot: true}}
		}, nil, nil, "spec.disks[1].boot: only one disk can boot"},
		{"duplicate disk names", func(m *v1alpha1.Machine) {
			m.Spec.Disks = []v1alpha1.MachineSpecDisk{{Name: "disk1", SizeGB: 1}, {SizeGB: 1}}
		}, nil, nil, `spec.disks[1].name: disk name "disk1" is also used by spec.disks[0]`},
		{"invalid disk name", func(m *v1alpha1.Machine) {
			m.Spec.Disks = []v1alpha1.MachineSpecDisk{{Name: "Data_1", SizeGB: 1}}
		}, nil, nil, `spec.disks[0].name: "Data_1" is not a valid disk name`},
		{"reserved disk name", func(m *v1alpha1.Machine) {
			m.Spec.Disks = []v1alpha1.MachineSpecDisk{{Name: "cloudinitdisk", SizeGB: 1}}
		}, nil, nil, `spec.disks[0].name: "cloudinitdisk" is reserved`},
		{"negative cores", func(m *v1alpha1.Machine) { m.Spec.CPU.Cores = -1 }, nil, nil, "spec.cpu.cores: -1 is out of range"},
		{"memory below 1Mi", func(m *v1alpha1.Machine) { m.Spec.Memory = 1000 }, nil, nil, "spec.memory: 1000 bytes is less than 1Mi"},
		{"static NetworkNamespace with a bad CIDR", nil, nil, badCIDR, `spec.network.networkNamespaceName: NetworkNamespace "nn" spec.ipAllocation.static.ipv4CIDR "10.0.0.0/99" is not a CIDR`},
		{"unknown ISO source type", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume, names.BootSourceTypeAnnotation: "ftp"}
			m.Spec.OS.ImageID = "ftp://img/os.iso"
		}, nil, nil, `metadata.annotations[kubevirt.io/boot-source-type]: "ftp" is not http, https or registry`},
		{"ISO imageID that is no URL", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume}
			m.Spec.OS.ImageID = "ubuntu-22.04"
		}, nil, nil, `spec.os.imageID: "ubuntu-22.04" is not an http(s) URL`},
		{"ISO imageID with a password and another scheme", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume}
			m.Spec.OS.ImageID = "ftp://user:s3cret@img.example/os.iso"
		}, nil, nil, `spec.os.imageID: "ftp://user:xxxxx@img.example/os.iso" is not an http(s) URL`},
		{"configDrive cloud-init", func(m *v1alpha1.Machine) {
			m.Spec.CloudInit = &v1alpha1.CloudInitConfig{Type: v1alpha1.CloudInitTypeConfigDrive}
		}, nil, nil, `spec.cloudInit.type: "configDrive" is not supported`},
		{"bad base64 user data", func(m *v1alpha1.Machine) {
			m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserDataBase64: "%%%"}
		}, nil, nil, "spec.cloudInit.userDataBase64: not valid base64"},
		{"Secret reference without a name", func(m *v1alpha1.Machine) {
			m.Spec.CloudInit = &v1alpha1.CloudInitConfig{NetworkDataSecretRef: &v1alpha1.CloudInitSecretRef{}}
		}, nil, nil, "spec.cloudInit.networkDataSecretRef.name: must not be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testMachine()
			if tc.mutate != nil {
				tc.mutate(m)
			}
			_, err := Plan(m, tc.class, tc.netns)
			specErr := requireSpecError(t, err)
			require.Contains(t, specErr.Message, "Machine ns1/"+m.Name+": "+tc.message)
		})
	}
}
