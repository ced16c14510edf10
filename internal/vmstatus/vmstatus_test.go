package vmstatus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/machineflow/machineflow/activities/contract"
)

func vmWith(status kubevirtv1.VirtualMachinePrintableStatus) *kubevirtv1.VirtualMachine {
	vm := &kubevirtv1.VirtualMachine{}
	vm.Status.PrintableStatus = status
	return vm
}

func vmiIn(phase kubevirtv1.VirtualMachineInstancePhase) *kubevirtv1.VirtualMachineInstance {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	vmi.Status.Phase = phase
	return vmi
}

func TestVMPhase(t *testing.T) {
	tests := []struct {
		printable kubevirtv1.VirtualMachinePrintableStatus
		vmi       *kubevirtv1.VirtualMachineInstance
		phase     string
	}{
		{kubevirtv1.VirtualMachineStatusStarting, vmiIn(kubevirtv1.Running), v1alpha1.MachinePhaseRunning},
		{kubevirtv1.VirtualMachineStatusRunning, nil, v1alpha1.MachinePhaseRunning},
		{kubevirtv1.VirtualMachineStatusStopped, nil, v1alpha1.MachinePhaseStopped},
		{kubevirtv1.VirtualMachineStatusStopping, nil, v1alpha1.MachinePhaseStopping},
		{kubevirtv1.VirtualMachineStatusTerminating, nil, v1alpha1.MachinePhaseTerminating},
		{kubevirtv1.VirtualMachineStatusCrashLoopBackOff, nil, v1alpha1.MachinePhaseFailed},
		{kubevirtv1.VirtualMachineStatusErrImagePull, vmiIn(kubevirtv1.Scheduling), v1alpha1.MachinePhaseFailed},
		{kubevirtv1.VirtualMachineStatusImagePullBackOff, nil, v1alpha1.MachinePhaseFailed},
		{kubevirtv1.VirtualMachineStatusPvcNotFound, nil, v1alpha1.MachinePhaseFailed},
		{kubevirtv1.VirtualMachineStatusDataVolumeError, nil, v1alpha1.MachinePhaseFailed},
		{kubevirtv1.VirtualMachineStatusUnschedulable, nil, v1alpha1.MachinePhaseFailed},
		{kubevirtv1.VirtualMachineStatusProvisioning, nil, v1alpha1.MachinePhasePending},
		{kubevirtv1.VirtualMachineStatusStarting, vmiIn(kubevirtv1.Scheduled), v1alpha1.MachinePhasePending},
		{kubevirtv1.VirtualMachineStatusWaitingForVolumeBinding, nil, v1alpha1.MachinePhasePending},
		{"", nil, v1alpha1.MachinePhasePending},
		{kubevirtv1.VirtualMachineStatusStarting, vmiIn(kubevirtv1.Failed), v1alpha1.MachinePhasePending},
	}
	for _, tc := range tests {
		name := string(tc.printable)
		if tc.vmi != nil {
			name += "/vmi-" + string(tc.vmi.Status.Phase)
		}
		t.Run(name, func(t *testing.T) {
			phase, state := Phase(vmWith(tc.printable), tc.vmi)
			require.Equal(t, tc.phase, phase)
			if tc.vmi != nil && tc.vmi.Status.Phase == kubevirtv1.Running {
				require.Equal(t, "Running", state)
			} else {
				require.Equal(t, string(tc.printable), state)
			}
			require.NotEqual(t, "Succeeded", phase)
		})
	}
}

func TestBootFailure(t *testing.T) {
	unschedulable := vmiIn(kubevirtv1.Scheduling)
	unschedulable.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{
		Type: kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled), Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available",
	}}
	pull := vmWith(kubevirtv1.VirtualMachineStatusErrImagePull)
	pull.Status.Conditions = []kubevirtv1.VirtualMachineCondition{{Type: kubevirtv1.VirtualMachineReady, Status: corev1.ConditionFalse, Reason: "ErrImagePull", Message: "pull failed"}}
	tests := []struct {
		name    string
		vm      *kubevirtv1.VirtualMachine
		vmi     *kubevirtv1.VirtualMachineInstance
		reason  string
		message string
	}{
		{"ErrImagePull from printableStatus with the condition's detail", pull, vmiIn(kubevirtv1.Scheduling), "ErrImagePull", "ErrImagePull: pull failed"},
		{"ImagePullBackOff", vmWith(kubevirtv1.VirtualMachineStatusImagePullBackOff), nil, "ImagePullBackOff", ""},
		{"CrashLoopBackOff", vmWith(kubevirtv1.VirtualMachineStatusCrashLoopBackOff), nil, "CrashLoopBackOff", ""},
		{"ErrorUnschedulable is Unschedulable", vmWith(kubevirtv1.VirtualMachineStatusUnschedulable), nil, "Unschedulable", ""},
		{"ErrorPvcNotFound is PvcNotFound", vmWith(kubevirtv1.VirtualMachineStatusPvcNotFound), nil, "PvcNotFound", ""},
		{"DataVolumeError", vmWith(kubevirtv1.VirtualMachineStatusDataVolumeError), nil, "DataVolumeError", ""},
		{"Unschedulable from the VMI's PodScheduled condition", vmWith(kubevirtv1.VirtualMachineStatusStarting), unschedulable, "Unschedulable", "0/3 nodes are available"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reason, message, failed := BootFailure(tc.vm, tc.vmi)
			require.True(t, failed)
			require.Equal(t, tc.reason, reason)
			require.Equal(t, tc.message, message)
		})
	}
	for _, healthy := range []kubevirtv1.VirtualMachinePrintableStatus{
		kubevirtv1.VirtualMachineStatusProvisioning, kubevirtv1.VirtualMachineStatusStarting, kubevirtv1.VirtualMachineStatusRunning,
	} {
		_, _, failed := BootFailure(vmWith(healthy), vmiIn(kubevirtv1.Scheduling))
		require.False(t, failed, "%s is not a failure", healthy)
	}
	_, _, failed := BootFailure(vmWith(kubevirtv1.VirtualMachineStatusStarting), vmiIn(kubevirtv1.Failed))
	require.False(t, failed, "a Failed VMI is restarted under runStrategy Always; CrashLoopBackOff decides")
}

func runningVMI() *kubevirtv1.VirtualMachineInstance {
	vmi := vmiIn(kubevirtv1.Running)
	vmi.Status.Interfaces = []kubevirtv1.VirtualMachineInstanceNetworkInterface{
		{Name: "default", MAC: "02:12:00:00:00:01", IPs: []string{"10.0.0.5", "fd00::5"}, LinkState: "up", InfoSource: "domain"},
		{MAC: "02:12:00:00:00:02", IPs: []string{"192.168.1.9"}},
		{Name: "nomac", IPs: []string{"10.9.9.9"}},
	}
	vmi.Status.VolumeStatus = []kubevirtv1.VolumeStatus{
		{Name: "root", Target: "vda", PersistentVolumeClaimInfo: &kubevirtv1.PersistentVolumeClaimInfo{
			ClaimName: "vm1", VolumeMode: ptr.To(corev1.PersistentVolumeBlock),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
		}},
		{Name: "cloudinitdisk", Target: "vdb"},
	}
	return vmi
}

func TestObserve(t *testing.T) {
	t.Run("IP_SOURCE vmi: named interfaces are public, unnamed private", func(t *testing.T) {
		obs := Observe(vmWith(kubevirtv1.VirtualMachineStatusRunning), runningVMI(), IPSourceVMI, nil)
		require.Equal(t, "Running", obs.Phase)
		require.Equal(t, []string{"10.0.0.5", "192.168.1.9", "10.9.9.9"}, obs.IPAddresses)
		require.Equal(t, []string{"fd00::5"}, obs.IPv6Addresses)
		require.Equal(t, []string{"10.0.0.5", "fd00::5", "10.9.9.9"}, obs.PublicIPAddresses)
		require.Equal(t, []string{"192.168.1.9"}, obs.PrivateIPAddresses)
		require.True(t, obs.HasAddress())
	})
	t.Run("interfaces without a MAC are not listed", func(t *testing.T) {
		obs := Observe(vmWith(kubevirtv1.VirtualMachineStatusRunning), runningVMI(), IPSourceVMI, nil)
		require.Equal(t, []contract.InterfaceStatus{
			{Name: "default", MACAddress: "02:12:00:00:00:01", IPAddresses: []string{"10.0.0.5"}, IPv6Addresses: []string{"fd00::5"}, State: "up", Type: "domain"},
			{MACAddress: "02:12:00:00:00:02", IPAddresses: []string{"192.168.1.9"}},
		}, obs.Interfaces)
	})
	t.Run("disks from PVC-backed volume status only", func(t *testing.T) {
		obs := Observe(vmWith(kubevirtv1.VirtualMachineStatusRunning), runningVMI(), IPSourceVMI, nil)
		require.Equal(t, []contract.DiskStatus{{Name: "root", Device: "/dev/vda", PVCName: "vm1", VolumeMode: "Block", Size: 10 << 30, AccessModes: []string{"ReadWriteMany"}}}, obs.Disks)
	})
	t.Run("IP_SOURCE networkconfiguration: public from its status", func(t *testing.T) {
		nc := []v1alpha1.NetworkConfigurationInterface{{MacAddress: "02:12:00:00:00:01", IPv4Addresses: []string{"172.16.0.4"}, IPv6Addresses: []string{"fd01::4"}}}
		obs := Observe(vmWith(kubevirtv1.VirtualMachineStatusRunning), runningVMI(), IPSourceNetworkConfiguration, nc)
		require.Equal(t, []string{"172.16.0.4", "fd01::4"}, obs.PublicIPAddresses)
	})
	t.Run("IP_SOURCE networkconfiguration falls back to the VMI when unavailable", func(t *testing.T) {
		obs := Observe(vmWith(kubevirtv1.VirtualMachineStatusRunning), runningVMI(), IPSourceNetworkConfiguration, nil)
		require.Equal(t, []string{"10.0.0.5", "fd00::5", "10.9.9.9"}, obs.PublicIPAddresses)
	})
	t.Run("no VMI: phase and state only", func(t *testing.T) {
		obs := Observe(vmWith(kubevirtv1.VirtualMachineStatusProvisioning), nil, IPSourceVMI, nil)
		require.Equal(t, contract.VMObservation{Phase: "Pending", State: "Provisioning"}, obs)
		require.False(t, obs.HasAddress())
	})
}

func TestMergeStatus(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	ref := contract.MachineRef{Namespace: "ns1", Name: "vm1"}
	ready := func(status string) *contract.Condition {
		return &contract.Condition{Type: v1alpha1.MachineConditionReady, Status: status, Reason: "Booted"}
	}

	t.Run("first write sets phase, provider, ProviderID, condition and lastUpdated", func(t *testing.T) {
		got, changed := Merge(v1alpha1.MachineStatus{}, contract.StatusUpdate{Machine: ref, Phase: "Creating", KubevirtConfig: "c1", Condition: ready("False")}, t0)
		require.True(t, changed)
		require.Equal(t, "Creating", got.Phase)
		require.Equal(t, v1alpha1.MachineProviderType("kubevirt"), got.Provider)
		require.Equal(t, "kubevirt://c1/ns1/vm1", got.ProviderID)
		require.Equal(t, t0, got.LastUpdated.Time)
		require.Len(t, got.Conditions, 1)
		require.Equal(t, t0, got.Conditions[0].LastTransitionTime.Time)
	})
	t.Run("the same update again changes nothing, lastUpdated included", func(t *testing.T) {
		upd := contract.StatusUpdate{Machine: ref, Phase: "Creating", KubevirtConfig: "c1", Condition: ready("False")}
		first, _ := Merge(v1alpha1.MachineStatus{}, upd, t0)
		second, changed := Merge(first, upd, t1)
		require.False(t, changed)
		require.Equal(t, first, second)
	})
	t.Run("lastTransitionTime moves only when the condition's status does", func(t *testing.T) {
		s, _ := Merge(v1alpha1.MachineStatus{}, contract.StatusUpdate{Machine: ref, Condition: ready("False")}, t0)
		msg := ready("False")
		msg.Message = "still booting"
		s, changed := Merge(s, contract.StatusUpdate{Machine: ref, Condition: msg}, t1)
		require.True(t, changed)
		require.Equal(t, t0, s.Conditions[0].LastTransitionTime.Time)
		require.Equal(t, "still booting", s.Conditions[0].Message)
		s, _ = Merge(s, contract.StatusUpdate{Machine: ref, Condition: ready("True")}, t1)
		require.Equal(t, t1, s.Conditions[0].LastTransitionTime.Time)
	})
	t.Run("conditions are de-duplicated by type, the last one wins", func(t *testing.T) {
		cur := v1alpha1.MachineStatus{Provider: "kubevirt", Conditions: []v1alpha1.MachineCondition{
			{Type: "Unknown", Status: "False", Reason: "a"},
			{Type: "Ready", Status: "False"},
			{Type: "Unknown", Status: "False", Reason: "b"},
		}}
		got, changed := Merge(cur, contract.StatusUpdate{Machine: ref}, t0)
		require.True(t, changed)
		require.Equal(t, []v1alpha1.MachineCondition{{Type: "Unknown", Status: "False", Reason: "b"}, {Type: "Ready", Status: "False"}}, got.Conditions)
	})
	t.Run("failure set, then cleared on recovery", func(t *testing.T) {
		failed, changed := Merge(v1alpha1.MachineStatus{}, contract.StatusUpdate{Machine: ref, Phase: "Failed", Failure: &contract.Failure{Reason: "VMBootFailed", Message: "ErrImagePull"}}, t0)
		require.True(t, changed)
		require.Equal(t, "VMBootFailed", *failed.FailureReason)
		require.Equal(t, "ErrImagePull", *failed.FailureMessage)
		recovered, changed := Merge(failed, contract.StatusUpdate{Machine: ref, Phase: "Running"}, t1)
		require.True(t, changed)
		require.Nil(t, recovered.FailureReason)
		require.Nil(t, recovered.FailureMessage)
	})
	t.Run("observation refreshes state, addresses, interfaces and disks", func(t *testing.T) {
		obs := Observe(vmWith(kubevirtv1.VirtualMachineStatusRunning), runningVMI(), IPSourceVMI, nil)
		got, changed := Merge(v1alpha1.MachineStatus{}, contract.StatusUpdate{Machine: ref, Phase: obs.Phase, Observation: &obs}, t0)
		require.True(t, changed)
		require.Equal(t, "Running", got.State)
		require.Equal(t, obs.IPAddresses, got.IPAddresses)
		require.Equal(t, obs.PublicIPAddresses, got.PublicIPAddresses)
		require.Equal(t, obs.PrivateIPAddresses, got.PrivateIPAddresses)
		require.Len(t, got.NetworkInterfaces, 2)
		require.Equal(t, "02:12:00:00:00:01", got.NetworkInterfaces[0].MACAddress)
		require.Equal(t, []v1alpha1.MachineStatusDisk{{Name: "root", Device: "/dev/vda", PVCName: "vm1", VolumeMode: "Block", Size: 10 << 30, AccessModes: []string{"ReadWriteMany"}}}, got.Disks)
	})
	t.Run("untouched fields stay", func(t *testing.T) {
		cur := v1alpha1.MachineStatus{Hostname: "h1", LastUpdated: metav1.NewTime(t0)}
		got, _ := Merge(cur, contract.StatusUpdate{Machine: ref, Phase: "Running"}, t1)
		require.Equal(t, "h1", got.Hostname)
	})
}
