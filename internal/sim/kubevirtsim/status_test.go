package kubevirtsim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

func TestRunPlanFor(t *testing.T) {
	yes, no := true, false
	strategy := func(s kubevirtv1.VirtualMachineRunStrategy) *kubevirtv1.VirtualMachineRunStrategy { return &s }
	tests := []struct {
		name string
		spec kubevirtv1.VirtualMachineSpec
		want runPlan
	}{
		{"Always runs and restarts", kubevirtv1.VirtualMachineSpec{RunStrategy: strategy(kubevirtv1.RunStrategyAlways)}, runPlan{wantRunning, true}},
		{"RerunOnFailure runs and restarts", kubevirtv1.VirtualMachineSpec{RunStrategy: strategy(kubevirtv1.RunStrategyRerunOnFailure)}, runPlan{wantRunning, true}},
		{"Once runs without restart", kubevirtv1.VirtualMachineSpec{RunStrategy: strategy(kubevirtv1.RunStrategyOnce)}, runPlan{wantRunning, false}},
		{"Halted stops", kubevirtv1.VirtualMachineSpec{RunStrategy: strategy(kubevirtv1.RunStrategyHalted)}, runPlan{wantStopped, false}},
		{"Manual is left alone", kubevirtv1.VirtualMachineSpec{RunStrategy: strategy(kubevirtv1.RunStrategyManual)}, runPlan{}},
		{"running true is Always", kubevirtv1.VirtualMachineSpec{Running: &yes}, runPlan{wantRunning, true}},
		{"running false is Halted", kubevirtv1.VirtualMachineSpec{Running: &no}, runPlan{wantStopped, false}},
		{"neither field defaults to Halted", kubevirtv1.VirtualMachineSpec{}, runPlan{wantStopped, false}},
		{"runStrategy wins over running", kubevirtv1.VirtualMachineSpec{Running: &no, RunStrategy: strategy(kubevirtv1.RunStrategyAlways)}, runPlan{wantRunning, true}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, runPlanFor(tt.spec), tt.name)
	}
}

func TestBootPhase(t *testing.T) {
	d := 2 * time.Second
	tests := []struct {
		elapsed time.Duration
		b       behaviour
		want    kubevirtv1.VirtualMachineInstancePhase
	}{
		{0, behaviour{bootDelay: d}, kubevirtv1.Scheduling},
		{d/2 - 1, behaviour{bootDelay: d}, kubevirtv1.Scheduling},
		{d / 2, behaviour{bootDelay: d}, kubevirtv1.Scheduled},
		{d - 1, behaviour{bootDelay: d}, kubevirtv1.Scheduled},
		{d, behaviour{bootDelay: d}, kubevirtv1.Running},
		{0, behaviour{}, kubevirtv1.Running},
		{time.Hour, behaviour{bootDelay: d, neverReady: true}, kubevirtv1.Scheduling},
		{time.Hour, behaviour{bootDelay: d, failure: ErrImagePull}, kubevirtv1.Scheduling},
		{time.Hour, behaviour{bootDelay: d, failure: ImagePullBackOff}, kubevirtv1.Scheduling},
		{time.Hour, behaviour{bootDelay: d, failure: Unschedulable}, kubevirtv1.Scheduling},
		{time.Hour, behaviour{bootDelay: d, failure: PvcNotFound}, kubevirtv1.Pending},
		{time.Hour, behaviour{bootDelay: d, failure: DataVolumeError}, kubevirtv1.Pending},
		{0, behaviour{bootDelay: d, failure: CrashLoopBackOff}, kubevirtv1.Failed},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, bootPhase(tt.elapsed, tt.b), "elapsed %v, %+v", tt.elapsed, tt.b)
	}
}

func TestVolumeStatusesNameGuestDevicesAndClaims(t *testing.T) {
	spec := kubevirtv1.VirtualMachineInstanceSpec{
		Domain: kubevirtv1.DomainSpec{Devices: kubevirtv1.Devices{Disks: []kubevirtv1.Disk{
			{Name: "root", DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}}},
			{Name: "iso", DiskDevice: kubevirtv1.DiskDevice{CDRom: &kubevirtv1.CDRomTarget{Bus: kubevirtv1.DiskBusSATA}}},
			{Name: "data", DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{}}},
			{Name: "legacy", DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusSCSI}}},
			{Name: "cloudinit", DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}}},
		}}},
		Volumes: []kubevirtv1.Volume{
			{Name: "root", VolumeSource: kubevirtv1.VolumeSource{PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: "vm1-root"}}}},
			{Name: "iso", VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: "vm1-iso"}}},
			{Name: "data", VolumeSource: kubevirtv1.VolumeSource{PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: "vm1-data"}}}},
			{Name: "legacy", VolumeSource: kubevirtv1.VolumeSource{EmptyDisk: &kubevirtv1.EmptyDiskSource{}}},
			{Name: "cloudinit", VolumeSource: kubevirtv1.VolumeSource{CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{UserData: "#cloud-config"}}},
		},
	}
	fs := corev1.PersistentVolumeFilesystem
	size := corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("20Gi")}
	pvcs := map[string]*corev1.PersistentVolumeClaim{"vm1-root": {Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		VolumeMode:  &fs,
		Resources:   corev1.VolumeResourceRequirements{Requests: size},
	}}}

	got := volumeStatuses(spec, pvcs)
	want := []kubevirtv1.VolumeStatus{
		{Name: "root", Target: "vda", PersistentVolumeClaimInfo: &kubevirtv1.PersistentVolumeClaimInfo{
			ClaimName: "vm1-root", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeMode: &fs, Requests: size, Capacity: size,
		}},
		{Name: "iso", Target: "sda", PersistentVolumeClaimInfo: &kubevirtv1.PersistentVolumeClaimInfo{ClaimName: "vm1-iso"}},
		{Name: "data", Target: "vdb", PersistentVolumeClaimInfo: &kubevirtv1.PersistentVolumeClaimInfo{ClaimName: "vm1-data"}},
		{Name: "legacy", Target: "sdb"},
		{Name: "cloudinit", Target: "vdc"},
	}
	assert.True(t, equality.Semantic.DeepEqual(want, got), "got %+v", got)
}

func runningVMI(ifaces ...kubevirtv1.Interface) *kubevirtv1.VirtualMachineInstance {
	return &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "vm1", Namespace: "ns", UID: "vmi-uid"},
		Spec:       kubevirtv1.VirtualMachineInstanceSpec{Domain: kubevirtv1.DomainSpec{Devices: kubevirtv1.Devices{Interfaces: ifaces}}},
	}
}

func TestVMIStatusRunningReportsInterfacesAndIsStable(t *testing.T) {
	vmi := runningVMI(kubevirtv1.Interface{Name: "default", MacAddress: "02:aa:bb:cc:dd:ee"}, kubevirtv1.Interface{Name: "vlan20"})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := addrs("10.1.0.2", "10.1.0.3")

	st := vmiStatus(vmi, "", kubevirtv1.Running, "node01", a, nil, t0)
	assert.Equal(t, kubevirtv1.Running, st.Phase)
	assert.Equal(t, "node01", st.NodeName)
	require.Len(t, st.Interfaces, 2)
	assert.Equal(t, kubevirtv1.VirtualMachineInstanceNetworkInterface{
		Name: "default", MAC: "02:aa:bb:cc:dd:ee", IP: "10.1.0.2", IPs: []string{"10.1.0.2"},
		InterfaceName: "eth0", InfoSource: "domain, guest-agent", LinkState: "up", QueueCount: 1,
	}, st.Interfaces[0])
	assert.Equal(t, "10.1.0.3", st.Interfaces[1].IP)
	assert.Regexp(t, `^02(:[0-9a-f]{2}){5}$`, st.Interfaces[1].MAC, "a generated MAC is locally administered unicast")
	assert.Equal(t, st.Interfaces[1].MAC, stableMAC(vmi, "vlan20"))
	assert.NotEqual(t, stableMAC(vmi, "vlan20"), stableMAC(vmi, "vlan30"))

	vmi.Status = st
	again := vmiStatus(vmi, "", kubevirtv1.Running, "node01", a, nil, t0.Add(time.Minute))
	assert.True(t, equality.Semantic.DeepEqual(st, again), "an unchanged VMI gets an identical status, so nothing is written")
}

func TestVMIStatusWithoutInterfacesReportsTheDefaultPodInterface(t *testing.T) {
	st := vmiStatus(runningVMI(), "", kubevirtv1.Running, "node01", addrs("10.1.0.2"), nil, time.Now())
	require.Len(t, st.Interfaces, 1)
	assert.Equal(t, "default", st.Interfaces[0].Name)
}

func TestVMIStatusTransitions(t *testing.T) {
	vmi := runningVMI()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var phases []kubevirtv1.VirtualMachineInstancePhase
	for i, p := range []kubevirtv1.VirtualMachineInstancePhase{kubevirtv1.Pending, kubevirtv1.Scheduling, kubevirtv1.Scheduled, kubevirtv1.Running} {
		vmi.Status = vmiStatus(vmi, "", p, "node01", addrs("10.1.0.2"), nil, t0.Add(time.Duration(i)*time.Second))
	}
	for _, ts := range vmi.Status.PhaseTransitionTimestamps {
		phases = append(phases, ts.Phase)
	}
	assert.Equal(t, []kubevirtv1.VirtualMachineInstancePhase{kubevirtv1.Pending, kubevirtv1.Scheduling, kubevirtv1.Scheduled, kubevirtv1.Running}, phases)
	ready := vmi.Status.Conditions[1]
	assert.Equal(t, kubevirtv1.VirtualMachineInstanceReady, ready.Type)
	assert.Equal(t, corev1.ConditionTrue, ready.Status)
	assert.Equal(t, t0.Add(3*time.Second), ready.LastTransitionTime.Time, "Ready turned true when Running was reached")
	podScheduled := vmi.Status.Conditions[0]
	assert.Equal(t, t0.Add(2*time.Second), podScheduled.LastTransitionTime.Time, "PodScheduled has been true since Scheduled")
}

func TestVMIStatusFailures(t *testing.T) {
	claimVMI := runningVMI()
	claimVMI.Spec.Volumes = []kubevirtv1.Volume{{Name: "root", VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: "vm1-root"}}}}
	tests := []struct {
		failure                Failure
		condType, reason, text string
		node                   bool
	}{
		{ErrImagePull, "Synchronized", "ErrImagePull", "failed to pull", true},
		{ImagePullBackOff, "Synchronized", "ImagePullBackOff", "failed to pull", true},
		{Unschedulable, "PodScheduled", "Unschedulable", "0/1 nodes are available", false},
		{PvcNotFound, "Synchronized", "FailedPvcNotFound", `PVC "vm1-root" not found`, false},
		{DataVolumeError, "DataVolumesReady", "NotAllDVsReady", "DataVolume import failed", false},
		{CrashLoopBackOff, "Ready", "GuestNotRunning", "the guest crashed", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.failure), func(t *testing.T) {
			phase := bootPhase(time.Hour, behaviour{failure: tt.failure})
			st := vmiStatus(claimVMI, tt.failure, phase, "node01", nil, nil, time.Now())
			assert.Empty(t, st.Interfaces)
			assert.Equal(t, tt.node, st.NodeName != "")
			var found bool
			for _, c := range st.Conditions {
				if string(c.Type) == tt.condType {
					found = true
					assert.Equal(t, corev1.ConditionFalse, c.Status)
					assert.Equal(t, tt.reason, c.Reason)
					assert.Contains(t, c.Message, tt.text)
				}
				if c.Type == kubevirtv1.VirtualMachineInstanceReady {
					assert.Equal(t, corev1.ConditionFalse, c.Status, "never Ready in a failure")
				}
			}
			assert.True(t, found, "condition %s missing in %+v", tt.condType, st.Conditions)
		})
	}
}

func TestVMStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	always := runPlan{want: wantRunning, restartFailed: true}
	vm := func(deleting bool) *kubevirtv1.VirtualMachine {
		v := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "vm1"}}
		if deleting {
			v.DeletionTimestamp = &metav1.Time{Time: now}
		}
		return v
	}
	vmiIn := func(phase kubevirtv1.VirtualMachineInstancePhase, f Failure, deleting bool) *kubevirtv1.VirtualMachineInstance {
		v := runningVMI()
		v.Status = vmiStatus(v, f, phase, "node01", addrs("10.1.0.2"), nil, now)
		if deleting {
			v.DeletionTimestamp = &metav1.Time{Time: now}
		}
		return v
	}
	tests := []struct {
		name           string
		vm             *kubevirtv1.VirtualMachine
		vmi            *kubevirtv1.VirtualMachineInstance
		b              behaviour
		invalid        error
		plan           runPlan
		printable      kubevirtv1.VirtualMachinePrintableStatus
		created, ready bool
	}{
		{"no VMI yet", vm(false), nil, behaviour{}, nil, always, "Starting", false, false},
		{"halted", vm(false), nil, behaviour{}, nil, runPlan{want: wantStopped}, "Stopped", false, false},
		{"booting", vm(false), vmiIn(kubevirtv1.Scheduled, "", false), behaviour{}, nil, always, "Starting", true, false},
		{"running", vm(false), vmiIn(kubevirtv1.Running, "", false), behaviour{}, nil, always, "Running", true, true},
		{"stopping", vm(false), vmiIn(kubevirtv1.Running, "", true), behaviour{}, nil, runPlan{want: wantStopped}, "Stopping", true, false},
		{"terminating", vm(true), vmiIn(kubevirtv1.Running, "", true), behaviour{}, nil, runPlan{}, "Terminating", true, false},
		{"unschedulable", vm(false), vmiIn(kubevirtv1.Scheduling, Unschedulable, false), behaviour{failure: Unschedulable}, nil, always, "ErrorUnschedulable", true, false},
		{"a failure shows once the VMI is in it", vm(false), vmiIn(kubevirtv1.Pending, "", false), behaviour{failure: ErrImagePull}, nil, always, "Starting", true, false},
		{"crash loop", vm(false), vmiIn(kubevirtv1.Failed, CrashLoopBackOff, false), behaviour{failure: CrashLoopBackOff}, nil, always, "CrashLoopBackOff", true, false},
		{"rejected", vm(false), nil, behaviour{}, assert.AnError, always, "Stopped", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := vmStatus(tt.vm, tt.vmi, tt.b, tt.invalid, tt.plan, now)
			assert.Equal(t, tt.printable, st.PrintableStatus)
			assert.Equal(t, tt.created, st.Created)
			assert.Equal(t, tt.ready, st.Ready)
			require.NotEmpty(t, st.Conditions)
			assert.Equal(t, kubevirtv1.VirtualMachineReady, st.Conditions[0].Type)
			assert.Equal(t, tt.ready, st.Conditions[0].Status == corev1.ConditionTrue)
			assert.Equal(t, tt.b.failure == CrashLoopBackOff, st.StartFailure != nil, "startFailure only in CrashLoopBackOff")
			if tt.invalid != nil {
				require.Len(t, st.Conditions, 2)
				assert.Equal(t, kubevirtv1.VirtualMachineFailure, st.Conditions[1].Type)
				assert.Equal(t, "SimulatorRejected", st.Conditions[1].Reason)
				assert.Equal(t, tt.invalid.Error(), st.Conditions[1].Message)
			}
		})
	}
}
