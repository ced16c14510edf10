package kubevirtsim

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// want is what a VM's run strategy asks of its VMI.
type want int

const (
	wantUnchanged want = iota // Manual, WaitAsReceiver: driven by subresources, not simulated
	wantRunning
	wantStopped
)

type runPlan struct {
	want          want
	restartFailed bool
}

func runPlanFor(spec kubevirtv1.VirtualMachineSpec) runPlan {
	// KubeVirt's webhook defaults a VM without either field to Halted.
	strategy := kubevirtv1.RunStrategyHalted
	switch {
	case spec.RunStrategy != nil:
		strategy = *spec.RunStrategy
	case spec.Running != nil && *spec.Running:
		strategy = kubevirtv1.RunStrategyAlways
	}
	switch strategy {
	case kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure:
		return runPlan{want: wantRunning, restartFailed: true}
	case kubevirtv1.RunStrategyOnce:
		return runPlan{want: wantRunning}
	case kubevirtv1.RunStrategyHalted:
		return runPlan{want: wantStopped}
	}
	return runPlan{}
}

// bootPhase is the VMI phase after elapsed time since the VMI appeared:
// Scheduling for the first half of the boot delay, Scheduled for the second,
// then Running; an injected failure holds it where KubeVirt would.
func bootPhase(elapsed time.Duration, b behaviour) kubevirtv1.VirtualMachineInstancePhase {
	if b.failure != "" {
		return b.failure.phase()
	}
	switch {
	case b.neverReady:
		return kubevirtv1.Scheduling
	case elapsed >= b.bootDelay:
		return kubevirtv1.Running
	case elapsed >= b.bootDelay/2:
		return kubevirtv1.Scheduled
	}
	return kubevirtv1.Scheduling
}

// condition is a VM or VMI condition before it gets its type and times.
type condition struct {
	typ     string
	status  corev1.ConditionStatus
	reason  string
	message string
}

const (
	podScheduled           = string(corev1.PodScheduled)
	reasonGuestNotRunning  = kubevirtv1.GuestNotRunningReason
	messageGuestNotRunning = "Guest VM is not reported as running"
)

// vmiConditions are the conditions virt-controller and virt-handler would
// report for a VMI in phase with failure f.
func vmiConditions(phase kubevirtv1.VirtualMachineInstancePhase, f Failure, claim string) []condition {
	notReady := condition{string(kubevirtv1.VirtualMachineInstanceReady), corev1.ConditionFalse, reasonGuestNotRunning, messageGuestNotRunning}
	scheduled := condition{podScheduled, corev1.ConditionTrue, "", ""}
	synchronized := string(kubevirtv1.VirtualMachineInstanceSynchronized)
	switch f {
	case ErrImagePull, ImagePullBackOff:
		return []condition{scheduled, notReady, {synchronized, corev1.ConditionFalse, string(f), "simulated: failed to pull the virt-launcher image"}}
	case Unschedulable:
		return []condition{{podScheduled, corev1.ConditionFalse, string(corev1.PodReasonUnschedulable), "simulated: 0/1 nodes are available: 1 Insufficient devices.kubevirt.io/kvm"}, notReady}
	case PvcNotFound:
		return []condition{notReady, {synchronized, corev1.ConditionFalse, "FailedPvcNotFound", fmt.Sprintf("simulated: PVC %q not found", claim)}}
	case DataVolumeError:
		return []condition{notReady, {string(kubevirtv1.VirtualMachineInstanceDataVolumesReady), corev1.ConditionFalse, kubevirtv1.VirtualMachineInstanceReasonNotAllDVsReady, "simulated: DataVolume import failed"}}
	case CrashLoopBackOff:
		return []condition{scheduled, {notReady.typ, corev1.ConditionFalse, reasonGuestNotRunning, "simulated: the guest crashed"}}
	}
	switch phase {
	case kubevirtv1.Running:
		return []condition{scheduled, {notReady.typ, corev1.ConditionTrue, "", ""}, {string(kubevirtv1.VirtualMachineInstanceAgentConnected), corev1.ConditionTrue, "", ""}}
	case kubevirtv1.Scheduled:
		return []condition{scheduled, notReady}
	}
	return []condition{notReady}
}

// vmiStatus is the status a VMI should have. It keeps transition times of
// unchanged conditions and phases, so a poll that changes nothing writes
// nothing.
func vmiStatus(vmi *kubevirtv1.VirtualMachineInstance, f Failure, phase kubevirtv1.VirtualMachineInstancePhase, node string, addrs []netip.Addr, pvcs map[string]*corev1.PersistentVolumeClaim, now time.Time) kubevirtv1.VirtualMachineInstanceStatus {
	prev := vmi.Status
	st := kubevirtv1.VirtualMachineInstanceStatus{
		Phase:                     phase,
		PhaseTransitionTimestamps: prev.PhaseTransitionTimestamps,
	}
	if prev.Phase != phase {
		st.PhaseTransitionTimestamps = append(slices.Clone(prev.PhaseTransitionTimestamps),
			kubevirtv1.VirtualMachineInstancePhaseTransitionTimestamp{Phase: phase, PhaseTransitionTimestamp: metav1.NewTime(now)})
	}
	if phase == kubevirtv1.Scheduled || phase == kubevirtv1.Running || phase == kubevirtv1.Failed ||
		f == ErrImagePull || f == ImagePullBackOff {
		st.NodeName = node // the launcher pod is on a node in these states
	}
	for _, c := range vmiConditions(phase, f, firstClaim(vmi.Spec)) {
		lt := metav1.NewTime(now)
		if i := slices.IndexFunc(prev.Conditions, func(p kubevirtv1.VirtualMachineInstanceCondition) bool { return string(p.Type) == c.typ }); i >= 0 && prev.Conditions[i].Status == c.status {
			lt = prev.Conditions[i].LastTransitionTime
		}
		st.Conditions = append(st.Conditions, kubevirtv1.VirtualMachineInstanceCondition{
			Type: kubevirtv1.VirtualMachineInstanceConditionType(c.typ), Status: c.status, Reason: c.reason, Message: c.message, LastTransitionTime: lt,
		})
	}
	if phase != kubevirtv1.Running {
		return st
	}
	for i, iface := range statusInterfaces(vmi.Spec) {
		ip := addrs[i].String()
		st.Interfaces = append(st.Interfaces, kubevirtv1.VirtualMachineInstanceNetworkInterface{
			Name:          iface.Name,
			MAC:           cmp.Or(iface.MacAddress, stableMAC(vmi, iface.Name)),
			IP:            ip,
			IPs:           []string{ip},
			InterfaceName: fmt.Sprintf("eth%d", i),
			InfoSource:    "domain, guest-agent",
			LinkState:     "up",
			QueueCount:    1,
		})
	}
	st.VolumeStatus = prev.VolumeStatus
	if prev.Phase != kubevirtv1.Running {
		st.VolumeStatus = volumeStatuses(vmi.Spec, pvcs)
	}
	return st
}

// statusInterfaces are the interfaces a running VMI reports: those in the
// spec, or the "default" pod interface KubeVirt adds when there is none.
func statusInterfaces(spec kubevirtv1.VirtualMachineInstanceSpec) []kubevirtv1.Interface {
	if ifaces := spec.Domain.Devices.Interfaces; len(ifaces) > 0 {
		return ifaces
	}
	return []kubevirtv1.Interface{{Name: "default"}}
}

// stableMAC is a locally administered unicast MAC derived from the VMI's
// identity, so it survives VMI restarts as a real pod network's would not,
// which keeps tests deterministic.
func stableMAC(vmi *kubevirtv1.VirtualMachineInstance, iface string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(vmi.Namespace + "/" + vmi.Name + "/" + iface))
	sum := h.Sum(nil)
	return net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}.String()
}

func claimName(v kubevirtv1.Volume) string {
	switch {
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ClaimName
	case v.DataVolume != nil:
		return v.DataVolume.Name
	}
	return ""
}

func firstClaim(spec kubevirtv1.VirtualMachineInstanceSpec) string {
	for _, v := range spec.Volumes {
		if c := claimName(v); c != "" {
			return c
		}
	}
	return ""
}

// claims reads the PVCs behind a VMI's volumes for its volume status. A
// missing PVC only leaves its details out: on envtest nothing binds them.
func (s *Simulator) claims(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) map[string]*corev1.PersistentVolumeClaim {
	out := map[string]*corev1.PersistentVolumeClaim{}
	for _, v := range vmi.Spec.Volumes {
		name := claimName(v)
		if name == "" {
			continue
		}
		var pvc corev1.PersistentVolumeClaim
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: vmi.Namespace, Name: name}, &pvc); err != nil {
			if client.IgnoreNotFound(err) != nil {
				s.log.Error(err, "reading PersistentVolumeClaim for volume status", "vmi", klog.KObj(vmi), "claim", name)
			}
			continue
		}
		out[name] = &pvc
	}
	return out
}

// volumeStatuses reports each volume with the guest device name KubeVirt
// gives its disk (vda… on virtio, sda… on sata and scsi) and, for PVC and
// DataVolume volumes, the claim.
func volumeStatuses(spec kubevirtv1.VirtualMachineInstanceSpec, pvcs map[string]*corev1.PersistentVolumeClaim) []kubevirtv1.VolumeStatus {
	targets := map[string]string{}
	next := map[string]byte{}
	for _, d := range spec.Domain.Devices.Disks {
		prefix := "sd"
		switch {
		case d.Disk != nil && (d.Disk.Bus == "" || d.Disk.Bus == kubevirtv1.DiskBusVirtio),
			d.CDRom != nil && d.CDRom.Bus == kubevirtv1.DiskBusVirtio:
			prefix = "vd"
		}
		targets[d.Name] = prefix + string('a'+next[prefix])
		next[prefix]++
	}
	var out []kubevirtv1.VolumeStatus
	for _, v := range spec.Volumes {
		vs := kubevirtv1.VolumeStatus{Name: v.Name, Target: targets[v.Name]}
		if claim := claimName(v); claim != "" {
			info := &kubevirtv1.PersistentVolumeClaimInfo{ClaimName: claim}
			if pvc := pvcs[claim]; pvc != nil {
				info.AccessModes = pvc.Spec.AccessModes
				info.VolumeMode = pvc.Spec.VolumeMode
				info.Requests = pvc.Spec.Resources.Requests
				// A bound claim has at least the requested capacity;
				// nothing binds claims on envtest, so report that.
				info.Capacity = pvc.Status.Capacity
				if len(info.Capacity) == 0 {
					info.Capacity = pvc.Spec.Resources.Requests
				}
			}
			vs.PersistentVolumeClaimInfo = info
		}
		out = append(out, vs)
	}
	return out
}

// vmStatus is the status virt-controller would give vm with vmi (nil if it
// has none). invalid is why the simulator refuses to start the VM.
func vmStatus(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, b behaviour, invalid error, plan runPlan, now time.Time) kubevirtv1.VirtualMachineStatus {
	st := *vm.Status.DeepCopy()
	alive := vmi != nil && vmi.DeletionTimestamp == nil
	st.Created = vmi != nil
	st.Ready = alive && vmi.Status.Phase == kubevirtv1.Running

	switch {
	case vm.DeletionTimestamp != nil:
		st.PrintableStatus = kubevirtv1.VirtualMachineStatusTerminating
	case vmi != nil && !alive:
		st.PrintableStatus = kubevirtv1.VirtualMachineStatusStopping
	case vmi == nil && plan.want == wantRunning && invalid == nil:
		st.PrintableStatus = kubevirtv1.VirtualMachineStatusStarting
	case vmi == nil:
		st.PrintableStatus = kubevirtv1.VirtualMachineStatusStopped
	case b.failure != "" && vmi.Status.Phase == b.failure.phase():
		// Reported once the VMI shows it, as virt-controller derives it
		// from the VMI and its pod.
		st.PrintableStatus = b.failure.PrintableStatus()
	case st.Ready:
		st.PrintableStatus = kubevirtv1.VirtualMachineStatusRunning
	default:
		st.PrintableStatus = kubevirtv1.VirtualMachineStatusStarting
	}

	ready := condition{string(kubevirtv1.VirtualMachineReady), corev1.ConditionFalse, "VMINotExists", "VMI does not exist"}
	if alive {
		// The VM's Ready condition mirrors the VMI's.
		i := slices.IndexFunc(vmi.Status.Conditions, func(c kubevirtv1.VirtualMachineInstanceCondition) bool {
			return c.Type == kubevirtv1.VirtualMachineInstanceReady
		})
		if i >= 0 {
			c := vmi.Status.Conditions[i]
			ready.status, ready.reason, ready.message = c.Status, c.Reason, c.Message
		}
	}
	want := []condition{ready}
	if invalid != nil {
		want = append(want, condition{string(kubevirtv1.VirtualMachineFailure), corev1.ConditionTrue, "SimulatorRejected", invalid.Error()})
	}
	var conds []kubevirtv1.VirtualMachineCondition
	for _, c := range want {
		lt := metav1.NewTime(now)
		if i := slices.IndexFunc(st.Conditions, func(p kubevirtv1.VirtualMachineCondition) bool { return string(p.Type) == c.typ }); i >= 0 && st.Conditions[i].Status == c.status {
			lt = st.Conditions[i].LastTransitionTime
		}
		conds = append(conds, kubevirtv1.VirtualMachineCondition{
			Type: kubevirtv1.VirtualMachineConditionType(c.typ), Status: c.status, Reason: c.reason, Message: c.message, LastTransitionTime: lt,
		})
	}
	st.Conditions = conds

	switch {
	case b.failure != CrashLoopBackOff || !alive || vmi.Status.Phase != kubevirtv1.Failed:
		st.StartFailure = nil
	case st.StartFailure == nil:
		st.StartFailure = &kubevirtv1.VirtualMachineStartFailure{
			ConsecutiveFailCount: 1,
			LastFailedVMIUID:     vmi.UID,
			RetryAfterTimestamp:  &metav1.Time{Time: now.Add(10 * time.Second)},
		}
	}
	return st
}
