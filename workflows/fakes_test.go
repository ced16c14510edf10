package workflows

import (
	"context"
	"slices"
	"sync"

	"go.temporal.io/sdk/activity"

	"github.com/machineflow/machineflow/activities/contract"
)

// activityRegistrar is what both the test environment and a real worker
// offer for registering activities.
type activityRegistrar interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// call is one activity execution seen by the fakes.
type call struct {
	name  string
	input any
}

// hook replaces an activity's default behaviour; it returns the result
// (ignored for activities without one) and the error.
type hook func(ctx context.Context, input any) (any, error)

// fakes stands in for package activities: every activity is registered
// under its contract name with its contract signature, records its input
// and by default succeeds as a healthy cluster would. Hooks change one
// activity's behaviour.
type fakes struct {
	mu    sync.Mutex
	calls []call
	hooks map[string]hook
	// config is what ResolvePlacement and LookupPlacement answer.
	config string
}

func newFakes() *fakes {
	return &fakes{hooks: map[string]hook{}, config: "kv-a"}
}

func (f *fakes) on(name string, h hook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks[name] = h
}

// called returns the names of the activities executed, in order.
func (f *fakes) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, len(f.calls))
	for i, c := range f.calls {
		names[i] = c.name
	}
	return names
}

// inputs returns the inputs of every execution of the named activity.
func (f *fakes) inputs(name string) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var in []any
	for _, c := range f.calls {
		if c.name == name {
			in = append(in, c.input)
		}
	}
	return in
}

func (f *fakes) count(name string) int { return len(f.inputs(name)) }

// statuses returns every status update, in order.
func (f *fakes) statuses() []contract.StatusUpdate {
	var out []contract.StatusUpdate
	for _, in := range f.inputs(contract.UpdateMachineStatusName) {
		out = append(out, in.(contract.StatusUpdate))
	}
	return out
}

// deletes returns the delete activities executed, in order.
func (f *fakes) deletes() []string {
	deletes := []string{contract.DeleteVirtualMachineName, contract.DeleteVolumesName,
		contract.DeleteNetworkName, contract.DeleteNetworkConfigurationName}
	var out []string
	for _, n := range f.called() {
		if slices.Contains(deletes, n) {
			out = append(out, n)
		}
	}
	return out
}

// handle records the call and runs its hook, if any.
func (f *fakes) handle(ctx context.Context, name string, input any) (hooked bool, res any, err error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{name: name, input: input})
	h := f.hooks[name]
	f.mu.Unlock()
	if h == nil {
		return false, nil, nil
	}
	res, err = h(ctx, input)
	return true, res, err
}

// withResult registers an activity with an input and a result.
func withResult[I, R any](r activityRegistrar, f *fakes, name string, def func(I) R) {
	r.RegisterActivityWithOptions(func(ctx context.Context, in I) (R, error) {
		hooked, res, err := f.handle(ctx, name, in)
		if !hooked {
			return def(in), nil
		}
		typed, _ := res.(R)
		return typed, err
	}, activity.RegisterOptions{Name: name})
}

// errorOnly registers an activity with an input and no result.
func errorOnly[I any](r activityRegistrar, f *fakes, name string) {
	r.RegisterActivityWithOptions(func(ctx context.Context, in I) error {
		_, _, err := f.handle(ctx, name, in)
		return err
	}, activity.RegisterOptions{Name: name})
}

// Default results of a healthy cluster for Machine default/vm1.
var (
	testMachine = contract.MachineRef{Namespace: "default", Name: "vm1"}
	testPlan    = contract.MachinePlan{
		Machine: testMachine, Generation: 1,
		CPU: contract.CPUPlan{Cores: 2, Sockets: 1, Threads: 1}, Memory: "2Gi",
		Disks: []contract.DiskPlan{
			{Name: "root", PVCName: "vm1", Size: "10Gi", Bus: "virtio", BootOrder: 1},
			{Name: "data", PVCName: "vm1-data", Size: "20Gi", Bus: "virtio"},
		},
		Network: contract.NetworkPlan{NetworkNamespace: "net1", VLANID: 42},
	}
	testNetwork = contract.NetworkResult{
		NetworkName: "vlan42", NADName: "vlan42", NADCreated: true,
		MACAddress: "02:12:00:00:00:01", NetworkConfigurationCreated: true,
	}
	testObservation = contract.VMObservation{
		Phase: "Running", State: "Running",
		IPAddresses: []string{"10.0.0.5"}, IPv6Addresses: []string{"fd00::5"},
	}
)

// register registers every machine activity.
func (f *fakes) register(r activityRegistrar) {
	withResult(r, f, contract.ResolvePlacementName, func(in contract.PlacementInput) contract.Placement {
		if in.KubevirtConfig != "" {
			return contract.Placement{KubevirtConfig: in.KubevirtConfig}
		}
		return contract.Placement{KubevirtConfig: f.config}
	})
	errorOnly[contract.ClusterRef](r, f, contract.ValidateClusterName)
	withResult(r, f, contract.LoadMachineName, func(contract.MachineRef) contract.MachinePlan { return testPlan })
	errorOnly[contract.RemoteMachine](r, f, contract.EnsureNamespaceName)
	withResult(r, f, contract.EnsureVolumesName, func(in contract.VolumesInput) contract.VolumesResult {
		var res contract.VolumesResult
		for _, d := range in.Disks {
			res.Volumes = append(res.Volumes, contract.VolumeStatus{PVCName: d.PVCName, Size: d.Size})
			res.Created = append(res.Created, d.PVCName)
		}
		return res
	})
	withResult(r, f, contract.EnsureNetworkName, func(contract.NetworkInput) contract.NetworkResult { return testNetwork })
	withResult(r, f, contract.EnsureVirtualMachineName, func(in contract.VirtualMachineInput) contract.VirtualMachineResult {
		return contract.VirtualMachineResult{Namespace: in.Plan.Machine.Namespace, Name: in.Plan.Machine.Name, Created: true}
	})
	withResult(r, f, contract.WaitForVirtualMachineName, func(contract.RemoteMachine) contract.VMObservation { return testObservation })
	withResult(r, f, contract.UpdateMachineStatusName, func(contract.StatusUpdate) contract.StatusResult {
		return contract.StatusResult{Changed: true}
	})
	withResult(r, f, contract.LookupPlacementName, func(contract.MachineRef) contract.Placement {
		return contract.Placement{KubevirtConfig: f.config}
	})
	withResult(r, f, contract.DeleteVirtualMachineName, func(in contract.RemoteMachine) contract.DeleteResult {
		return contract.DeleteResult{Deleted: []string{"VirtualMachine " + in.Machine.Namespace + "/" + in.Machine.Name}}
	})
	withResult(r, f, contract.DeleteVolumesName, func(in contract.DeleteVolumesInput) contract.DeleteResult {
		names := in.PVCNames
		if names == nil {
			names = []string{"vm1", "vm1-data"}
		}
		var res contract.DeleteResult
		for _, n := range names {
			res.Deleted = append(res.Deleted, "PersistentVolumeClaim "+in.Machine.Namespace+"/"+n)
		}
		return res
	})
	withResult(r, f, contract.DeleteNetworkName, func(in contract.RemoteMachine) contract.DeleteResult {
		return contract.DeleteResult{Deleted: []string{"NetworkAttachmentDefinition " + in.Machine.Namespace + "/vlan42"}}
	})
	withResult(r, f, contract.DeleteNetworkConfigurationName, func(in contract.MachineRef) contract.DeleteResult {
		return contract.DeleteResult{Deleted: []string{"NetworkConfiguration " + in.Namespace + "/" + in.Name}}
	})
	r.RegisterActivityWithOptions(func(ctx context.Context) ([]string, error) {
		hooked, res, err := f.handle(ctx, contract.ListClustersName, nil)
		if !hooked {
			return []string{f.config}, nil
		}
		names, _ := res.([]string)
		return names, err
	}, activity.RegisterOptions{Name: contract.ListClustersName})
	withResult(r, f, contract.CheckClusterName, func(in contract.ClusterRef) contract.ClusterHealth {
		return contract.ClusterHealth{KubevirtConfig: in.KubevirtConfig, Healthy: true}
	})
	errorOnly[contract.ClusterHealth](r, f, contract.RecordClusterHealthName)
	errorOnly[contract.ClusterRef](r, f, contract.InvalidateClusterClientName)
}

// registerControl registers a fake AwaitWorkflowClosed, for the test
// environment, which has no Temporal service to describe workflows with.
func (f *fakes) registerControl(r activityRegistrar) {
	errorOnly[string](r, f, AwaitWorkflowClosedName)
}
