package vmstatus

import (
	"fmt"
	"net"

	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/machineflow/machineflow/activities/contract"
)

// IP sources for Machine status addresses (the IP_SOURCE setting).
const (
	IPSourceVMI                  = "vmi"
	IPSourceNetworkConfiguration = "networkconfiguration"
)

// failedPrintableStatuses are the VM printableStatus values that mean the VM
// cannot boot without someone fixing something (the operator's Failed set,
// plus ErrorUnschedulable), with the reason we report for each.
var failedPrintableStatuses = map[kubevirtv1.VirtualMachinePrintableStatus]string{
	kubevirtv1.VirtualMachineStatusCrashLoopBackOff: "CrashLoopBackOff",
	kubevirtv1.VirtualMachineStatusErrImagePull:     "ErrImagePull",
	kubevirtv1.VirtualMachineStatusImagePullBackOff: "ImagePullBackOff",
	kubevirtv1.VirtualMachineStatusPvcNotFound:      "PvcNotFound",
	kubevirtv1.VirtualMachineStatusDataVolumeError:  "DataVolumeError",
	kubevirtv1.VirtualMachineStatusUnschedulable:    "Unschedulable",
}

// Observe maps a VM and its VMI (nil when there is none) to vitistack's
// vocabulary. ipSource is Settings.IPSource; ncStatus is the Machine's
// NetworkConfiguration status interfaces, nil when unavailable (then the
// networkconfiguration source falls back to the VMI, as in the operator).
func Observe(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, ipSource string, ncStatus []v1alpha1.NetworkConfigurationInterface) contract.VMObservation {
	obs := contract.VMObservation{}
	obs.Phase, obs.State = Phase(vm, vmi)
	if vmi == nil {
		return obs
	}
	var named, unnamed []string
	for _, ifc := range vmi.Status.Interfaces {
		v4, v6 := splitIPs(ifc.IPs, ifc.IP)
		obs.IPAddresses = append(obs.IPAddresses, v4...)
		obs.IPv6Addresses = append(obs.IPv6Addresses, v6...)
		all := append(append([]string(nil), v4...), v6...)
		if ifc.Name != "" {
			named = append(named, all...)
		} else {
			unnamed = append(unnamed, all...)
		}
		if ifc.MAC == "" || ifc.MAC == "00:00:00:00:00:00" || len(all) == 0 {
			continue
		}
		obs.Interfaces = append(obs.Interfaces, contract.InterfaceStatus{
			Name: ifc.Name, MACAddress: ifc.MAC, IPAddresses: v4, IPv6Addresses: v6,
			State: ifc.LinkState, Type: ifc.InfoSource,
		})
	}
	obs.PublicIPAddresses, obs.PrivateIPAddresses = named, unnamed
	if ipSource == IPSourceNetworkConfiguration && ncStatus != nil {
		var public []string
		for _, ifc := range ncStatus {
			public = append(public, ifc.IPv4Addresses...)
			public = append(public, ifc.IPv6Addresses...)
		}
		obs.PublicIPAddresses = public
	}
	for _, vs := range vmi.Status.VolumeStatus {
		pvc := vs.PersistentVolumeClaimInfo
		if pvc == nil {
			continue
		}
		d := contract.DiskStatus{Name: vs.Name, PVCName: pvc.ClaimName}
		if vs.Target != "" {
			d.Device = "/dev/" + vs.Target
		}
		if pvc.VolumeMode != nil {
			d.VolumeMode = string(*pvc.VolumeMode)
		}
		if q, ok := pvc.Capacity[corev1.ResourceStorage]; ok {
			d.Size = q.Value()
		}
		for _, m := range pvc.AccessModes {
			d.AccessModes = append(d.AccessModes, string(m))
		}
		obs.Disks = append(obs.Disks, d)
	}
	return obs
}

// Phase is the operator's mapping, with vitistack phases where it used
// the off-spec "Succeeded": a running VMI is Running; otherwise the state is
// the VM's printableStatus and the phase follows from it (a Failed VMI is
// restarted by KubeVirt, so its phase alone decides nothing).
func Phase(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) (phase, state string) {
	if vmi != nil && vmi.Status.Phase == kubevirtv1.Running {
		return v1alpha1.MachinePhaseRunning, string(kubevirtv1.VirtualMachineStatusRunning)
	}
	var printable kubevirtv1.VirtualMachinePrintableStatus
	if vm != nil {
		printable = vm.Status.PrintableStatus
	}
	state = string(printable)
	if _, failed := failedPrintableStatuses[printable]; failed {
		return v1alpha1.MachinePhaseFailed, state
	}
	switch printable {
	case kubevirtv1.VirtualMachineStatusRunning:
		return v1alpha1.MachinePhaseRunning, state
	case kubevirtv1.VirtualMachineStatusStopped:
		return v1alpha1.MachinePhaseStopped, state
	case kubevirtv1.VirtualMachineStatusStopping:
		return v1alpha1.MachinePhaseStopping, state
	case kubevirtv1.VirtualMachineStatusTerminating:
		return v1alpha1.MachinePhaseTerminating, state
	}
	return v1alpha1.MachinePhasePending, state
}

// BootFailure says whether a VM has reached a state it cannot boot from,
// with a reason (ErrImagePull, Unschedulable, ...) and the detail KubeVirt
// gives. A Failed VMI alone is not final: under runStrategy Always KubeVirt
// replaces it, and only repeated failures become CrashLoopBackOff.
func BootFailure(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) (reason, message string, failed bool) {
	if vm != nil {
		if r, ok := failedPrintableStatuses[vm.Status.PrintableStatus]; ok {
			return r, vmConditionMessage(vm), true
		}
	}
	if vmi == nil {
		return "", "", false
	}
	for _, c := range vmi.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled) &&
			c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return "Unschedulable", c.Message, true
		}
	}
	return "", "", false
}

// vmConditionMessage is the first explanatory message among the VM's
// Failure and Ready conditions.
func vmConditionMessage(vm *kubevirtv1.VirtualMachine) string {
	for _, t := range []kubevirtv1.VirtualMachineConditionType{kubevirtv1.VirtualMachineFailure, kubevirtv1.VirtualMachineReady} {
		for _, c := range vm.Status.Conditions {
			if c.Type == t && c.Message != "" {
				if c.Reason != "" {
					return fmt.Sprintf("%s: %s", c.Reason, c.Message)
				}
				return c.Message
			}
		}
	}
	return ""
}

// splitIPs separates IPv4 and IPv6 addresses, dropping anything unparsable.
// legacy is the deprecated single ipAddress field, used when IPs is empty.
func splitIPs(ips []string, legacy string) (v4, v6 []string) {
	if len(ips) == 0 && legacy != "" {
		ips = []string{legacy}
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		switch {
		case ip == nil:
		case ip.To4() != nil:
			v4 = append(v4, s)
		default:
			v6 = append(v6, s)
		}
	}
	return v4, v6
}
