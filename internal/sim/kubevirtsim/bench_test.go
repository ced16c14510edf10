package kubevirtsim

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/machineflow/machineflow/internal/harness/testenv"
)

// BenchmarkTickSteady is the cost of one poll over 50 running VMs that need
// no write: the load the simulator puts on an API server between changes.
func BenchmarkTickSteady(b *testing.B) {
	const vms = 50
	env := testenv.New(b, testenv.Options{Clusters: 1})
	c := env.Clusters[0].Client
	sim, err := New(env.Clusters[0].VirtController, Options{AddressPool: pool, BootDelay: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	sim.log = logr.Discard()
	for i := range vms {
		if err := c.Create(b.Context(), newVM("default", fmt.Sprintf("vm%d", i), nil)); err != nil {
			b.Fatal(err)
		}
	}
	// Finalizer, VMI, then Pending → Running and the VM status: a few polls.
	for range 5 {
		if err := sim.tick(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	var list kubevirtv1.VirtualMachineList
	if err := c.List(b.Context(), &list); err != nil {
		b.Fatal(err)
	}
	for _, vm := range list.Items {
		if vm.Status.PrintableStatus != kubevirtv1.VirtualMachineStatusRunning {
			b.Fatalf("%s is %s, want Running before measuring", vm.Name, vm.Status.PrintableStatus)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := sim.tick(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
