package vmplan

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

func basePlan() contract.MachinePlan {
	return contract.MachinePlan{
		Machine: contract.MachineRef{Namespace: "ns1", Name: "vm1"},
		CPU:     contract.CPUPlan{Cores: 4, Sockets: 2, Threads: 1},
		Memory:  "3Gi",
		Disks: []contract.DiskPlan{
			{Name: "root", PVCName: "vm1", Size: "20Gi", Bus: "virtio", BootOrder: 1},
			{Name: "data", PVCName: "vm1-data", Size: "5Gi", Bus: "sata"},
		},
		Network: contract.NetworkPlan{PodNetwork: true},
	}
}

func baseSpecInput() VMInput {
	return VMInput{
		Plan:          basePlan(),
		Network:       contract.NetworkResult{NetworkName: "default", MACAddress: "02:12:aa:bb:cc:dd"},
		CPUModel:      "host-model",
		ISOSize:       resource.MustParse("8Gi"),
		ISOAccessMode: corev1.ReadWriteMany,
	}
}

func TestBuildVirtualMachine(t *testing.T) {
	type check func(t *testing.T, vm *kubevirtv1.VirtualMachine)
	domain := func(vm *kubevirtv1.VirtualMachine) *kubevirtv1.DomainSpec { return &vm.Spec.Template.Spec.Domain }
	tests := []struct {
		name   string
		mutate func(in *VMInput)
		check  check
	}{
		{"runStrategy Always", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
		}},
		{"VM named after the Machine in its namespace, no ownerRef", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.Equal(t, "ns1", vm.Namespace)
			require.Equal(t, "vm1", vm.Name)
			require.Empty(t, vm.OwnerReferences)
		}},
		{"CPU model from CPU_MODEL and cores/sockets/threads from the plan", func(in *VMInput) { in.CPUModel = "host-passthrough" },
			func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				require.Equal(t, kubevirtv1.CPU{Model: "host-passthrough", Cores: 4, Sockets: 2, Threads: 1}, *domain(vm).CPU)
			}},
		{"memory.guest from the plan", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.Equal(t, "3Gi", domain(vm).Memory.Guest.String())
		}},
		{"EFI with secureBoot false", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.False(t, *domain(vm).Firmware.Bootloader.EFI.SecureBoot)
		}},
		{"autoattachPodInterface false and networkInterfaceMultiQueue true", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.False(t, *domain(vm).Devices.AutoattachPodInterface)
			require.True(t, *domain(vm).Devices.NetworkInterfaceMultiQueue)
		}},
		{"one virtio bridge NIC with the MAC on the pod network", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			ifaces := domain(vm).Devices.Interfaces
			require.Len(t, ifaces, 1)
			require.Equal(t, "default", ifaces[0].Name)
			require.Equal(t, kubevirtv1.VirtIO, ifaces[0].Model)
			require.NotNil(t, ifaces[0].Bridge)
			require.Equal(t, "02:12:aa:bb:cc:dd", ifaces[0].MacAddress)
			require.Equal(t, []kubevirtv1.Network{{Name: "default", NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}}},
				vm.Spec.Template.Spec.Networks)
		}},
		{"bridge NIC on the multus network of a VLAN NAD", func(in *VMInput) {
			in.Network = contract.NetworkResult{NetworkName: "vlan42", NADName: "vlan42", MACAddress: "02:12:00:00:00:01"}
		}, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.Equal(t, "vlan42", domain(vm).Devices.Interfaces[0].Name)
			require.Equal(t, []kubevirtv1.Network{{Name: "vlan42", NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: "vlan42"}}}},
				vm.Spec.Template.Spec.Networks)
		}},
		{"PXE boot order 2 when no imageID", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.Equal(t, uint(2), *domain(vm).Devices.Interfaces[0].BootOrder)
		}},
		{"no PXE boot order with an imageID", func(in *VMInput) {
			in.Plan.Boot = contract.BootPlan{HasImage: true}
			in.ImageURL = "http://img/os.iso"
		},
			func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				require.Nil(t, domain(vm).Devices.Interfaces[0].BootOrder)
				require.Empty(t, vm.Spec.DataVolumeTemplates, "an imageID without the boot-source annotation is no ISO boot")
			}},
		{"disks keep name, bus and boot order; volumes point at the PVCs", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			disks := domain(vm).Devices.Disks
			require.Len(t, disks, 2)
			require.Equal(t, "root", disks[0].Name)
			require.Equal(t, kubevirtv1.DiskBus("virtio"), disks[0].Disk.Bus)
			require.Equal(t, uint(1), *disks[0].BootOrder)
			require.Equal(t, kubevirtv1.DiskBus("sata"), disks[1].Disk.Bus)
			require.Nil(t, disks[1].BootOrder)
			vols := vm.Spec.Template.Spec.Volumes
			require.Equal(t, "vm1", vols[0].PersistentVolumeClaim.ClaimName)
			require.Equal(t, "vm1-data", vols[1].PersistentVolumeClaim.ClaimName)
		}},
		{"ISO boot via DataVolumeTemplate <vm>-iso and cdrom-iso on sata with boot order 2", func(in *VMInput) {
			in.Plan.Boot = contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "http"}
			in.ImageURL = "http://img/os.iso"
			in.ISOSize = resource.MustParse("3Gi")
		}, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.Len(t, vm.Spec.DataVolumeTemplates, 1)
			dv := vm.Spec.DataVolumeTemplates[0]
			require.Equal(t, "vm1-iso", dv.Name)
			require.Equal(t, names.ManagedLabels("vm1"), dv.Labels)
			require.Equal(t, "http://img/os.iso", dv.Spec.Source.HTTP.URL)
			require.Equal(t, corev1.PersistentVolumeFilesystem, *dv.Spec.Storage.VolumeMode)
			require.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, dv.Spec.Storage.AccessModes)
			require.Equal(t, "3Gi", dv.Spec.Storage.Resources.Requests.Storage().String())
			disks := domain(vm).Devices.Disks
			cdrom := disks[len(disks)-1]
			require.Equal(t, "cdrom-iso", cdrom.Name)
			require.Equal(t, kubevirtv1.DiskBus("sata"), cdrom.CDRom.Bus)
			require.Equal(t, uint(2), *cdrom.BootOrder)
			vols := vm.Spec.Template.Spec.Volumes
			require.Equal(t, "vm1-iso", vols[len(vols)-1].DataVolume.Name)
		}},
		{"ISO from a registry source", func(in *VMInput) {
			in.Plan.Boot = contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "registry"}
			in.ImageURL = "docker://quay.io/os:1"
		}, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			src := vm.Spec.DataVolumeTemplates[0].Spec.Source
			require.Nil(t, src.HTTP)
			require.Equal(t, "docker://quay.io/os:1", *src.Registry.URL)
		}},
		{"NoCloud cloud-init on disk cloudinitdisk from the Secret <vm>-cloudinit, no payload in the spec", func(in *VMInput) {
			in.CloudInit = &CloudInitData{UserData: "#cloud-config\npassword: hunter2\n", NetworkData: "version: 1\n"}
		}, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			disks := domain(vm).Devices.Disks
			require.Equal(t, "cloudinitdisk", disks[len(disks)-1].Name)
			vols := vm.Spec.Template.Spec.Volumes
			ref := &corev1.LocalObjectReference{Name: "vm1-cloudinit"}
			require.Equal(t, &kubevirtv1.CloudInitNoCloudSource{UserDataSecretRef: ref, NetworkDataSecretRef: ref}, vols[len(vols)-1].CloudInitNoCloud)
			raw, err := json.Marshal(vm)
			require.NoError(t, err)
			require.NotContains(t, string(raw), "hunter2")
			require.NotContains(t, string(raw), "version: 1")
		}},
		{"no networkDataSecretRef without network data", func(in *VMInput) {
			in.CloudInit = &CloudInitData{UserData: NoopUserData}
		}, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			vols := vm.Spec.Template.Spec.Volumes
			require.Equal(t, &kubevirtv1.CloudInitNoCloudSource{UserDataSecretRef: &corev1.LocalObjectReference{Name: "vm1-cloudinit"}},
				vols[len(vols)-1].CloudInitNoCloud)
		}},
		{"no cloud-init disk without spec.cloudInit", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			for _, v := range vm.Spec.Template.Spec.Volumes {
				require.Nil(t, v.CloudInitNoCloud)
			}
		}},
		{"managed labels on the VM and its template", nil, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.Equal(t, names.ManagedLabels("vm1"), vm.Labels)
			require.Equal(t, names.ManagedLabels("vm1"), vm.Spec.Template.ObjectMeta.Labels)
		}},
		{"only Machine annotations with the VM prefix are copied", func(in *VMInput) {
			in.MachineAnnotations = map[string]string{
				names.VMAnnotationPrefix + "fail": "ErrImagePull",
				names.PlacementAnnotation:         "c1",
				"kubectl.kubernetes.io/last":      "{}",
			}
		}, func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
			require.Equal(t, map[string]string{names.VMAnnotationPrefix + "fail": "ErrImagePull"}, vm.Annotations)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseSpecInput()
			if tc.mutate != nil {
				tc.mutate(&in)
			}
			vm, err := BuildVirtualMachine(in)
			require.NoError(t, err)
			tc.check(t, vm)
			requireAdmitted(t, vm)
		})
	}
}

func TestBuildVirtualMachineRejectsBadPlans(t *testing.T) {
	for name, mutate := range map[string]func(in *VMInput){
		"memory not a quantity": func(in *VMInput) { in.Plan.Memory = "lots" },
		"no MAC":                func(in *VMInput) { in.Network.MACAddress = "" },
		"disk without PVC":      func(in *VMInput) { in.Plan.Disks[1].PVCName = "" },
		"unknown ISO source": func(in *VMInput) {
			in.Plan.Boot = contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "ftp"}
			in.ImageURL = "ftp://x"
		},
		"ISO plan without an image URL": func(in *VMInput) {
			in.Plan.Boot = contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "http"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := baseSpecInput()
			mutate(&in)
			_, err := BuildVirtualMachine(in)
			requireSpecError(t, err)
		})
	}
}

func TestCloudInitDataNeverFormatsItsPayload(t *testing.T) {
	d := CloudInitData{UserData: "password: hunter2"}
	for _, s := range []string{d.String(), d.GoString()} {
		require.NotContains(t, s, "hunter2")
	}
}

// requireSpecError asserts err is a SpecError, the planner's final refusal.
func requireSpecError(t *testing.T, err error) *SpecError {
	t.Helper()
	var specErr *SpecError
	require.ErrorAs(t, err, &specErr, "not a SpecError: %v", err)
	return specErr
}
