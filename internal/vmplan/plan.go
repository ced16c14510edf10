package vmplan

import (
	"fmt"
	"net"

	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// Operator defaults when a Machine has no MachineClass.
const (
	defaultMemory      = "2Gi"
	defaultCores       = 2
	defaultSockets     = 1
	defaultThreads     = 1
	defaultDiskSize    = "10Gi"
	defaultRootDisk    = "root"
	maxDiskSizeGB      = 65536
	maxCores           = 256
	maxSockets         = 16
	maxThreads         = 8
	minMemory          = 1 << 20
	maxVLANID          = 4094
	BootPVCLabel       = "disk-type"
	BootPVCLabelValue  = "boot"
	defaultUserDataKey = "userdata"
	defaultNetDataKey  = "networkdata"
)

func RefOf(m *v1alpha1.Machine) contract.MachineRef {
	return contract.MachineRef{Namespace: m.Namespace, Name: m.Name}
}

// Plan validates a Machine against its (optional) MachineClass and
// NetworkNamespace and resolves the plan. It does no I/O.
func Plan(machine *v1alpha1.Machine, class *v1alpha1.MachineClass, netns *v1alpha1.NetworkNamespace) (contract.MachinePlan, error) {
	ref := RefOf(machine)
	// The API server allows names of up to 253 characters, but every
	// object made for the Machine carries its name as a label value.
	if errs := validation.IsValidLabelValue(machine.Name); len(errs) > 0 {
		return contract.MachinePlan{}, InvalidSpec(ref, "metadata.name", "%s: the name is the VM's and the value of label %s on every object made for the Machine",
			errs[0], names.SourceMachineLabel)
	}
	plan := contract.MachinePlan{Machine: ref, Generation: machine.Generation, CloudInit: machine.Spec.CloudInit != nil}

	cpu, memory, err := planResources(machine, class)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	plan.CPU, plan.Memory = cpu, memory

	if plan.Disks, err = planDiskList(machine); err != nil {
		return contract.MachinePlan{}, err
	}
	if plan.Network, err = planNetwork(ref, netns); err != nil {
		return contract.MachinePlan{}, err
	}
	if plan.Boot, err = PlanBoot(machine); err != nil {
		return contract.MachinePlan{}, err
	}
	if err := ValidateCloudInit(ref, machine.Spec.CloudInit); err != nil {
		return contract.MachinePlan{}, err
	}
	return plan, nil
}

// planResources applies the operator's precedence: defaults, then an enabled
// MachineClass, then the Machine's own cpu/memory when > 0.
func planResources(machine *v1alpha1.Machine, class *v1alpha1.MachineClass) (contract.CPUPlan, string, error) {
	ref := RefOf(machine)
	cpu := contract.CPUPlan{Cores: defaultCores, Sockets: defaultSockets, Threads: defaultThreads}
	memory := resource.MustParse(defaultMemory)
	if class != nil {
		if !class.Spec.Enabled {
			return contract.CPUPlan{}, "", InvalidSpec(ref, "spec.machineClass", "MachineClass %q is not enabled", class.Name)
		}
		if q := class.Spec.Memory.Quantity; !q.IsZero() {
			if q.CmpInt64(minMemory) < 0 {
				return contract.CPUPlan{}, "", InvalidSpec(ref, "spec.machineClass", "MachineClass %q spec.memory.quantity: %s is less than 1Mi", class.Name, q.String())
			}
			memory = q.DeepCopy()
		}
		// A class is bounded like a Machine: a value beyond would make a VM
		// that never schedules, or wrap around in the conversion below.
		c := class.Spec.CPU
		for _, o := range []struct {
			field      string
			value, max uint
		}{{"cores", c.Cores, maxCores}, {"sockets", c.Sockets, maxSockets}, {"threads", c.Threads, maxThreads}} {
			if o.value > o.max {
				return contract.CPUPlan{}, "", InvalidSpec(ref, "spec.machineClass", "MachineClass %q spec.cpu.%s: %d is out of range 0..%d", class.Name, o.field, o.value, o.max)
			}
		}
		// The operator takes the class's cores as is (0 lets KubeVirt choose)
		// but sockets and threads only when set.
		cpu.Cores = uint32(c.Cores)
		if c.Sockets > 0 {
			cpu.Sockets = uint32(c.Sockets)
		}
		if c.Threads > 0 {
			cpu.Threads = uint32(c.Threads)
		}
	}
	for _, o := range []struct {
		field string
		value int
		max   int
		dst   *uint32
	}{
		{"spec.cpu.cores", machine.Spec.CPU.Cores, maxCores, &cpu.Cores},
		{"spec.cpu.sockets", machine.Spec.CPU.Sockets, maxSockets, &cpu.Sockets},
		{"spec.cpu.threadsPerCore", machine.Spec.CPU.ThreadsPerCore, maxThreads, &cpu.Threads},
	} {
		switch {
		case o.value < 0 || o.value > o.max:
			return contract.CPUPlan{}, "", InvalidSpec(ref, o.field, "%d is out of range 0..%d", o.value, o.max)
		case o.value > 0:
			*o.dst = uint32(o.value)
		}
	}
	switch m := machine.Spec.Memory; {
	case m < 0:
		return contract.CPUPlan{}, "", InvalidSpec(ref, "spec.memory", "%d must be >= 0", m)
	case m > 0 && m < minMemory:
		return contract.CPUPlan{}, "", InvalidSpec(ref, "spec.memory", "%d bytes is less than 1Mi", m)
	case m > 0:
		// The operator truncates to whole MiB.
		memory = resource.MustParse(fmt.Sprintf("%dMi", m/minMemory))
	}
	return cpu, memory.String(), nil
}

// planDiskList applies the operator's disk naming: disk "root" (index 0) or
// "disk<i>" unless named; PVC <vm> for the boot disk, <vm>-<name> for a named
// one, <vm>-disk<i> otherwise; one 10Gi boot disk when none is given.
func planDiskList(machine *v1alpha1.Machine) ([]contract.DiskPlan, error) {
	ref := RefOf(machine)
	vm := machine.Name
	if len(machine.Spec.Disks) == 0 {
		return []contract.DiskPlan{{Name: defaultRootDisk, PVCName: vm, Size: defaultDiskSize, Bus: BusVirtio, BootOrder: 1}}, nil
	}
	disks := make([]contract.DiskPlan, 0, len(machine.Spec.Disks))
	diskIndex := map[string]int{}
	pvcIndex := map[string]int{}
	bootIndex := -1
	for i, d := range machine.Spec.Disks {
		field := fmt.Sprintf("spec.disks[%d]", i)
		if d.SizeGB <= 0 || d.SizeGB > maxDiskSizeGB {
			return nil, InvalidSpec(ref, field+".sizeGB", "must be > 0 and <= %d, got %d", maxDiskSizeGB, d.SizeGB)
		}
		name := d.Name
		if name == "" {
			name = fmt.Sprintf("disk%d", i)
			if i == 0 {
				name = defaultRootDisk
			}
		} else if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return nil, InvalidSpec(ref, field+".name", "%q is not a valid disk name: %s", name, errs[0])
		}
		if name == CloudInitDiskName || name == CDROMDiskName {
			return nil, InvalidSpec(ref, field+".name", "%q is reserved", name)
		}
		if j, dup := diskIndex[name]; dup {
			return nil, InvalidSpec(ref, field+".name", "disk name %q is also used by spec.disks[%d]", name, j)
		}
		diskIndex[name] = i

		var pvc string
		switch {
		case d.Boot:
			if bootIndex >= 0 {
				return nil, InvalidSpec(ref, field+".boot", "only one disk can boot, spec.disks[%d] already does", bootIndex)
			}
			bootIndex = i
			pvc = vm
		case d.Name != "":
			pvc = vm + "-" + d.Name
		default:
			pvc = fmt.Sprintf("%s-disk%d", vm, i)
		}
		if errs := validation.IsDNS1123Subdomain(pvc); len(errs) > 0 {
			return nil, InvalidSpec(ref, field+".name", "PVC name %q is invalid: %s", pvc, errs[0])
		}
		if j, dup := pvcIndex[pvc]; dup {
			return nil, InvalidSpec(ref, field+".name", "PVC name %q is also used by spec.disks[%d]", pvc, j)
		}
		pvcIndex[pvc] = i

		plan := contract.DiskPlan{Name: name, PVCName: pvc, Size: fmt.Sprintf("%dGi", d.SizeGB), Bus: diskBus(d.Type)}
		if d.Boot {
			plan.BootOrder = 1
		}
		disks = append(disks, plan)
	}
	return disks, nil
}

// diskBus maps spec.disks[].type to a bus: sata and scsi as named, every
// other type (gp3, nvme, ...) virtio.
func diskBus(diskType string) string {
	switch diskType {
	case BusSATA:
		return BusSATA
	case BusSCSI:
		return BusSCSI
	default:
		return BusVirtio
	}
}

// planNetwork decides between the pod network and a bridge NAD: a VLAN id
// > 0, or static allocation (which needs a real L2 segment), selects the
// bridge.
func planNetwork(ref contract.MachineRef, netns *v1alpha1.NetworkNamespace) (contract.NetworkPlan, error) {
	if netns == nil {
		return contract.NetworkPlan{PodNetwork: true}, nil
	}
	plan := contract.NetworkPlan{NetworkNamespace: netns.Name, VLANID: netns.Status.VlanID}
	if plan.VLANID > maxVLANID {
		// The bridge CNI plugin would refuse it when the VM's pod starts,
		// leaving a VM that never boots.
		return contract.NetworkPlan{}, InvalidSpec(ref, "spec.network.networkNamespaceName",
			"NetworkNamespace %q status.vlanId %d is not a VLAN id (at most %d)", netns.Name, plan.VLANID, maxVLANID)
	}
	alloc := netns.Spec.IPAllocation
	if alloc != nil && alloc.Type == v1alpha1.IPAllocationTypeStatic {
		plan.Static = true
		if s := alloc.Static; s != nil && s.IPv4CIDR != "" {
			if _, _, err := net.ParseCIDR(s.IPv4CIDR); err != nil {
				return contract.NetworkPlan{}, InvalidSpec(ref, "spec.network.networkNamespaceName",
					"NetworkNamespace %q spec.ipAllocation.static.ipv4CIDR %q is not a CIDR", netns.Name, s.IPv4CIDR)
			}
		}
	}
	plan.PodNetwork = plan.VLANID <= 0 && !plan.Static
	return plan, nil
}
