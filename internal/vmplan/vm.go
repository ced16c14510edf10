package vmplan

import (
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// Names inside the VM spec, kept from the operator so existing tooling that
// looks for them (ISO cleanup, dashboards) keeps working.
const (
	CloudInitDiskName = "cloudinitdisk"
	CDROMDiskName     = "cdrom-iso"
	PodNetworkName    = "default"
	isoSuffix         = "-iso"
	pxeBootOrder      = uint(2)
	isoBootOrder      = uint(2)
)

// Bus types of MachinePlan disks.
const (
	BusVirtio = "virtio"
	BusSATA   = "sata"
	BusSCSI   = "scsi"
)

// ISO source types (annotation kubevirt.io/boot-source-type).
const (
	ISOSourceHTTP     = "http"
	ISOSourceHTTPS    = "https"
	ISOSourceRegistry = "registry"
)

// VMInput is everything the VM shape depends on. It is resolved by
// EnsureVirtualMachine; BuildVirtualMachine itself does no I/O.
type VMInput struct {
	Plan     contract.MachinePlan
	Network  contract.NetworkResult
	CPUModel string
	// ImageURL is the Machine's spec.os.imageID, which the plan leaves out
	// of history; ImageURL, ISOSize and ISOAccessMode make the ISO
	// DataVolumeTemplate and are only read when Plan.Boot.ISO is set.
	ImageURL      string
	ISOSize       resource.Quantity
	ISOAccessMode corev1.PersistentVolumeAccessMode
	// CloudInit is nil when the Machine has no spec.cloudInit. The VM only
	// references the payload's Secret (BuildCloudInitSecret); the payload
	// itself never enters the VM spec.
	CloudInit *CloudInitData
	// MachineAnnotations are the Machine's annotations; only those with
	// names.VMAnnotationPrefix reach the VM.
	MachineAnnotations map[string]string
}

// BuildVirtualMachine returns the VirtualMachine for a plan, in the
// vitistack kubevirt-operator's shape.
func BuildVirtualMachine(in VMInput) (*kubevirtv1.VirtualMachine, error) {
	plan := in.Plan
	m := plan.Machine
	memory, err := resource.ParseQuantity(plan.Memory)
	if err != nil || memory.Sign() <= 0 {
		return nil, InvalidSpec(m, "memory", "%q is not a positive quantity", plan.Memory)
	}
	if in.Network.MACAddress == "" {
		return nil, InvalidSpec(m, "network", "no MAC address resolved")
	}
	networkName := in.Network.NetworkName
	if networkName == "" {
		networkName = PodNetworkName
	}

	disks, volumes, err := planDisks(plan)
	if err != nil {
		return nil, err
	}
	var dataVolumes []kubevirtv1.DataVolumeTemplateSpec
	if plan.Boot.ISO {
		dv, err := isoDataVolume(plan, in.ImageURL, in.ISOSize, in.ISOAccessMode)
		if err != nil {
			return nil, err
		}
		dataVolumes = append(dataVolumes, dv)
		disks = append(disks, kubevirtv1.Disk{
			Name:       CDROMDiskName,
			DiskDevice: kubevirtv1.DiskDevice{CDRom: &kubevirtv1.CDRomTarget{Bus: BusSATA}},
			BootOrder:  ptr.To(isoBootOrder),
		})
		volumes = append(volumes, kubevirtv1.Volume{
			Name:         CDROMDiskName,
			VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: dv.Name}},
		})
	}
	if in.CloudInit != nil {
		disks = append(disks, kubevirtv1.Disk{
			Name:       CloudInitDiskName,
			DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: BusVirtio}},
		})
		volumes = append(volumes, kubevirtv1.Volume{
			Name:         CloudInitDiskName,
			VolumeSource: kubevirtv1.VolumeSource{CloudInitNoCloud: cloudInitSecretSource(m.Name, *in.CloudInit)},
		})
	}

	iface := kubevirtv1.Interface{
		Name:                   networkName,
		Model:                  kubevirtv1.VirtIO,
		InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}},
		MacAddress:             in.Network.MACAddress,
	}
	// Without an image the VM installs itself over the network: PXE comes
	// right after the (empty) boot disk.
	if !plan.Boot.HasImage {
		iface.BootOrder = ptr.To(pxeBootOrder)
	}
	network := kubevirtv1.Network{Name: networkName}
	if networkName == PodNetworkName {
		network.Pod = &kubevirtv1.PodNetwork{}
	} else {
		network.Multus = &kubevirtv1.MultusNetwork{NetworkName: in.Network.NADName}
	}

	labels := names.ManagedLabels(m.Name)
	return &kubevirtv1.VirtualMachine{
		TypeMeta: metav1.TypeMeta{APIVersion: kubevirtv1.SchemeGroupVersion.String(), Kind: "VirtualMachine"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        m.Name,
			Namespace:   m.Namespace,
			Labels:      labels,
			Annotations: passThroughAnnotations(in.MachineAnnotations),
		},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy:         ptr.To(kubevirtv1.RunStrategyAlways),
			DataVolumeTemplates: dataVolumes,
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec: kubevirtv1.VirtualMachineInstanceSpec{
					Domain: kubevirtv1.DomainSpec{
						CPU: &kubevirtv1.CPU{
							Model:   in.CPUModel,
							Cores:   plan.CPU.Cores,
							Sockets: plan.CPU.Sockets,
							Threads: plan.CPU.Threads,
						},
						Memory: &kubevirtv1.Memory{Guest: &memory},
						Firmware: &kubevirtv1.Firmware{Bootloader: &kubevirtv1.Bootloader{
							EFI: &kubevirtv1.EFI{SecureBoot: ptr.To(false)},
						}},
						Devices: kubevirtv1.Devices{
							AutoattachPodInterface:     ptr.To(false),
							NetworkInterfaceMultiQueue: ptr.To(true),
							Disks:                      disks,
							Interfaces:                 []kubevirtv1.Interface{iface},
						},
					},
					Networks: []kubevirtv1.Network{network},
					Volumes:  volumes,
				},
			},
		},
	}, nil
}

// planDisks turns the plan's PVC-backed disks into VM disks and volumes.
func planDisks(plan contract.MachinePlan) ([]kubevirtv1.Disk, []kubevirtv1.Volume, error) {
	disks := make([]kubevirtv1.Disk, 0, len(plan.Disks)+2)
	volumes := make([]kubevirtv1.Volume, 0, len(plan.Disks)+2)
	for i, d := range plan.Disks {
		if d.Name == "" || d.PVCName == "" {
			return nil, nil, InvalidSpec(plan.Machine, fmt.Sprintf("disks[%d]", i), "disk has no name or PVC name")
		}
		disk := kubevirtv1.Disk{
			Name:       d.Name,
			DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBus(busOrVirtio(d.Bus))}},
		}
		if d.BootOrder > 0 {
			disk.BootOrder = ptr.To(d.BootOrder)
		}
		disks = append(disks, disk)
		volumes = append(volumes, kubevirtv1.Volume{
			Name: d.Name,
			VolumeSource: kubevirtv1.VolumeSource{PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{
				PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: d.PVCName},
			}},
		})
	}
	return disks, volumes, nil
}

func busOrVirtio(bus string) string {
	if bus == "" {
		return BusVirtio
	}
	return bus
}

// isoDataVolume is the DataVolumeTemplate <vm>-iso that imports the ISO.
// CD-ROMs need a Filesystem volume.
func isoDataVolume(plan contract.MachinePlan, url string, size resource.Quantity, accessMode corev1.PersistentVolumeAccessMode) (kubevirtv1.DataVolumeTemplateSpec, error) {
	if url == "" {
		return kubevirtv1.DataVolumeTemplateSpec{}, InvalidSpec(plan.Machine, "spec.os.imageID", "empty, but the plan boots an ISO")
	}
	var source cdiv1beta1.DataVolumeSource
	switch plan.Boot.ISOSourceType {
	case "", ISOSourceHTTP, ISOSourceHTTPS:
		source.HTTP = &cdiv1beta1.DataVolumeSourceHTTP{URL: url}
	case ISOSourceRegistry:
		source.Registry = &cdiv1beta1.DataVolumeSourceRegistry{URL: ptr.To(url)}
	default:
		return kubevirtv1.DataVolumeTemplateSpec{}, InvalidSpec(plan.Machine, "metadata.annotations["+names.BootSourceTypeAnnotation+"]",
			"%q is not http, https or registry", plan.Boot.ISOSourceType)
	}
	return kubevirtv1.DataVolumeTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Name:   ISOName(plan.Machine.Name),
			Labels: names.ManagedLabels(plan.Machine.Name),
		},
		Spec: cdiv1beta1.DataVolumeSpec{
			Source: &source,
			Storage: &cdiv1beta1.StorageSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{accessMode},
				VolumeMode:  ptr.To(corev1.PersistentVolumeFilesystem),
				Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: size},
				},
			},
		},
	}, nil
}

func ISOName(vm string) string { return vm + isoSuffix }

// passThroughAnnotations keeps the annotations meant for the VM.
func passThroughAnnotations(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if strings.HasPrefix(k, names.VMAnnotationPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
