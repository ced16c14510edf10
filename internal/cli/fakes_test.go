package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/machineflow/machineflow/activities/contract"
)

// Machines whose names choose how the fake activities treat them.
const (
	// machineBootFails: WaitForVirtualMachine fails for good.
	machineBootFails = "boot-fails"
	// machineSlow: WaitForVirtualMachine heartbeats until release is closed.
	machineSlow = "slow"
	// machineStuck: DeleteVirtualMachine fails as an unreachable cluster
	// does, retryably, until the deprovision is forced.
	machineStuck = "stuck"
)

// fakeActivities stands in for package activities in the CLI's dev-server
// tests. Each method has the name and signature of one machine activity,
// so registering the struct registers them all under their contract
// names; the workflows under test are the real ones.
type fakeActivities struct {
	release chan struct{}

	mu       sync.Mutex
	recorded map[string]int // RecordClusterHealth calls per config
}

func newFakeActivities() *fakeActivities {
	return &fakeActivities{release: make(chan struct{}), recorded: map[string]int{}}
}

func (f *fakeActivities) healthRecords(config string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recorded[config]
}

func (f *fakeActivities) ResolvePlacement(_ context.Context, in contract.PlacementInput) (contract.Placement, error) {
	if in.KubevirtConfig != "" {
		return contract.Placement{KubevirtConfig: in.KubevirtConfig}, nil
	}
	return contract.Placement{KubevirtConfig: "kv-a"}, nil
}

func (f *fakeActivities) ValidateCluster(context.Context, contract.ClusterRef) error { return nil }

func (f *fakeActivities) LoadMachine(_ context.Context, ref contract.MachineRef) (contract.MachinePlan, error) {
	return contract.MachinePlan{Machine: ref, Memory: "1Gi", Disks: []contract.DiskPlan{{Name: "root", PVCName: ref.Name, Size: "1Gi", Bus: "virtio"}}}, nil
}

func (f *fakeActivities) EnsureNamespace(context.Context, contract.RemoteMachine) error { return nil }

func (f *fakeActivities) EnsureVolumes(_ context.Context, in contract.VolumesInput) (contract.VolumesResult, error) {
	return contract.VolumesResult{Created: []string{in.Machine.Name}}, nil
}

func (f *fakeActivities) EnsureNetwork(context.Context, contract.NetworkInput) (contract.NetworkResult, error) {
	return contract.NetworkResult{NetworkName: "default", MACAddress: "02:12:00:00:00:01"}, nil
}

func (f *fakeActivities) EnsureVirtualMachine(_ context.Context, in contract.VirtualMachineInput) (contract.VirtualMachineResult, error) {
	return contract.VirtualMachineResult{Namespace: in.Plan.Machine.Namespace, Name: in.Plan.Machine.Name, Created: true}, nil
}

func (f *fakeActivities) WaitForVirtualMachine(ctx context.Context, rm contract.RemoteMachine) (contract.VMObservation, error) {
	running := contract.VMObservation{Phase: "Running", State: "Running", IPAddresses: []string{"10.0.0.5"}}
	switch rm.Machine.Name {
	case machineBootFails:
		return contract.VMObservation{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("VM %s/%s on %s failed to boot: CrashLoopBackOff", rm.Machine.Namespace, rm.Machine.Name, rm.KubevirtConfig),
			contract.ErrTypeBootFailed, nil)
	case machineSlow:
		for {
			activity.RecordHeartbeat(ctx, "Scheduling")
			select {
			case <-f.release:
				return running, nil
			case <-ctx.Done():
				return contract.VMObservation{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return running, nil
}

func (f *fakeActivities) UpdateMachineStatus(context.Context, contract.StatusUpdate) (contract.StatusResult, error) {
	return contract.StatusResult{Changed: true}, nil
}

func (f *fakeActivities) LookupPlacement(context.Context, contract.MachineRef) (contract.Placement, error) {
	return contract.Placement{KubevirtConfig: "kv-a"}, nil
}

func (f *fakeActivities) DeleteVirtualMachine(_ context.Context, rm contract.RemoteMachine) (contract.DeleteResult, error) {
	if rm.Machine.Name == machineStuck {
		return contract.DeleteResult{}, temporal.NewApplicationError("KubevirtConfig kv-a: connection refused", contract.ErrTypeClusterUnreachable)
	}
	return contract.DeleteResult{Deleted: []string{"VirtualMachine " + rm.Machine.Namespace + "/" + rm.Machine.Name}}, nil
}

func (f *fakeActivities) DeleteVolumes(_ context.Context, in contract.DeleteVolumesInput) (contract.DeleteResult, error) {
	return contract.DeleteResult{Deleted: []string{"PersistentVolumeClaim " + in.Machine.Namespace + "/" + in.Machine.Name}}, nil
}

func (f *fakeActivities) DeleteNetwork(context.Context, contract.RemoteMachine) (contract.DeleteResult, error) {
	return contract.DeleteResult{}, nil
}

func (f *fakeActivities) DeleteNetworkConfiguration(_ context.Context, ref contract.MachineRef) (contract.DeleteResult, error) {
	return contract.DeleteResult{Deleted: []string{"NetworkConfiguration " + ref.Namespace + "/" + ref.Name}}, nil
}

func (f *fakeActivities) CleanupISO(_ context.Context, rm contract.RemoteMachine) (contract.DeleteResult, error) {
	return contract.DeleteResult{Deleted: []string{"DataVolume " + rm.Machine.Namespace + "/" + rm.Machine.Name + "-iso"}}, nil
}

func (f *fakeActivities) ListClusters(context.Context) ([]string, error) {
	return []string{"kv-a", "kv-b"}, nil
}

// CheckCluster: kv-b is down.
func (f *fakeActivities) CheckCluster(_ context.Context, ref contract.ClusterRef) (contract.ClusterHealth, error) {
	h := contract.ClusterHealth{KubevirtConfig: ref.KubevirtConfig, Healthy: true, Duration: time.Millisecond, CheckedAt: time.Now()}
	if ref.KubevirtConfig == "kv-b" {
		h.Healthy, h.Reason = false, "ClusterUnreachable: connection refused"
	}
	return h, nil
}

func (f *fakeActivities) RecordClusterHealth(_ context.Context, h contract.ClusterHealth) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded[h.KubevirtConfig]++
	return nil
}

func (f *fakeActivities) InvalidateClusterClient(context.Context, contract.ClusterRef) error {
	return nil
}
