package vmstatus

import (
	"testing"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/machineflow/machineflow/activities/contract"
)

func BenchmarkObserve(b *testing.B) {
	vm, vmi := vmWith(kubevirtv1.VirtualMachineStatusRunning), runningVMI()
	b.ReportAllocs()
	for b.Loop() {
		_ = Observe(vm, vmi, IPSourceVMI, nil)
	}
}

// BenchmarkMergeStatusUnchanged is the steady state of a status write:
// nothing changed, nothing is written.
func BenchmarkMergeStatusUnchanged(b *testing.B) {
	obs := Observe(vmWith(kubevirtv1.VirtualMachineStatusRunning), runningVMI(), IPSourceVMI, nil)
	upd := contract.StatusUpdate{Machine: contract.MachineRef{Namespace: "ns", Name: "vm"}, Phase: "Running", KubevirtConfig: "c1", Observation: &obs,
		Condition: &contract.Condition{Type: v1alpha1.MachineConditionReady, Status: v1alpha1.ConditionTrue, Reason: "Running"}}
	now := time.Now()
	cur, _ := Merge(v1alpha1.MachineStatus{}, upd, now)
	b.ReportAllocs()
	for b.Loop() {
		if _, changed := Merge(cur, upd, now); changed {
			b.Fatal("unexpected change")
		}
	}
}
