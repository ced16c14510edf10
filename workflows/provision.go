package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/machineflow/machineflow/activities/contract"
)

const (
	// ConditionProvisioning is the Machine condition that names the step a
	// provision is in (vitistack has no Provisioning phase: the phase stays
	// Creating).
	ConditionProvisioning = "Provisioning"
	// ReasonProvisioned is the condition reason once the VM runs.
	ReasonProvisioned = "Provisioned"

	// ErrTypeBootDeadlineExceeded is the failure reason when the VM did not
	// reach Running within ProvisionInput.BootTimeout.
	ErrTypeBootDeadlineExceeded = "BootDeadlineExceeded"
)

// ProvisionMachine creates the VM of a Machine on its KubeVirt cluster and
// waits until it runs: ResolvePlacement, ValidateCluster, LoadMachine,
// EnsureNamespace, EnsureVolumes, EnsureNetwork, EnsureVirtualMachine and
// WaitForVirtualMachine, with phase Creating and the condition
// {Provisioning, True, <step>} written before each step (vitistack has no
// Provisioning phase) and phase Running at the end. A final failure or a
// cancellation compensates what this run created, then the Machine is
// Failed with the error type as its reason, or Pending when cancelled.
func ProvisionMachine(ctx workflow.Context, in ProvisionInput) (ProvisionResult, error) {
	if err := in.Validate(); err != nil {
		return ProvisionResult{}, invalidInput(ProvisionMachineName, err)
	}
	bootTimeout, _ := in.bootTimeout() // validated above
	progress, err := newTracker(ctx)
	if err != nil {
		return ProvisionResult{}, err
	}
	p := &provision{
		machine:     contract.MachineRef{Namespace: in.Namespace, Name: in.Name},
		requested:   in.KubevirtConfig,
		bootTimeout: bootTimeout,
		progress:    progress,
		logger:      log.With(workflow.GetLogger(ctx), "machineNamespace", in.Namespace, "machineName", in.Name),
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, machineSearchAttributes(in.Namespace, in.Name)...); err != nil {
		return ProvisionResult{}, fmt.Errorf("upsert search attributes: %w", err)
	}

	obs, err := p.steps(ctx)
	if err == nil {
		err = p.setStatus(ctx, contract.PhaseRunning, &contract.Condition{
			Type: ConditionProvisioning, Status: "False", Reason: ReasonProvisioned,
			Message: fmt.Sprintf("VM %s/%s runs on %s", p.machine.Namespace, p.machine.Name, p.config),
		}, nil, &obs)
	}
	if err != nil {
		return ProvisionResult{}, p.fail(ctx, err)
	}
	p.progress.finish(StepCompleted)
	p.logger.Info("machine provisioned", "kubevirtConfig", p.config)
	return ProvisionResult{
		KubevirtConfig: p.config,
		VMNamespace:    p.machine.Namespace,
		VMName:         p.machine.Name,
		IPAddresses:    obs.IPAddresses,
		IPv6Addresses:  obs.IPv6Addresses,
	}, nil
}

// provision is the state of one ProvisionMachine run.
type provision struct {
	machine     contract.MachineRef
	requested   string
	bootTimeout time.Duration
	config      string
	created     createdResources
	progress    *tracker
	attrs       searchAttributes
	logger      log.Logger
}

// createdResources is what this run created (as opposed to adopted):
// exactly what compensation deletes.
type createdResources struct {
	pvcs                 []string
	nad                  bool
	networkConfiguration bool
	vm                   bool
	// cloudInitSecret: EnsureVirtualMachine, which writes the VM's
	// cloud-init Secret before the VM, has not reported for a Machine
	// with cloud-init, so the Secret may exist without a VM.
	cloudInitSecret bool
}

func (c createdResources) any() bool {
	return len(c.pvcs) > 0 || c.nad || c.networkConfiguration || c.vm || c.cloudInitSecret
}

// cloudInitSecretChange versions the compensation of a cloud-init Secret
// left by a failed EnsureVirtualMachine: runs recorded before it delete
// nothing then.
const cloudInitSecretChange = "compensate-cloudinit-secret"

func (p *provision) remote() contract.RemoteMachine {
	return contract.RemoteMachine{KubevirtConfig: p.config, Machine: p.machine}
}

// steps runs everything up to a running VM and returns what the cluster
// shows of it.
func (p *provision) steps(ctx workflow.Context) (contract.VMObservation, error) {
	var obs contract.VMObservation
	var placement contract.Placement
	err := p.step(ctx, contract.ResolvePlacementName, &placement,
		contract.PlacementInput{Machine: p.machine, KubevirtConfig: p.requested})
	if err != nil {
		return obs, err
	}
	if placement.KubevirtConfig == "" {
		return obs, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("no KubevirtConfig was chosen for Machine %s/%s", p.machine.Namespace, p.machine.Name),
			contract.ErrTypeConfigNotFound, nil)
	}
	p.config = placement.KubevirtConfig
	if err := p.attrs.setConfig(ctx, p.config); err != nil {
		return obs, fmt.Errorf("upsert search attributes: %w", err)
	}

	if err := p.step(ctx, contract.ValidateClusterName, nil, contract.ClusterRef{KubevirtConfig: p.config}); err != nil {
		return obs, err
	}
	var plan contract.MachinePlan
	if err := p.step(ctx, contract.LoadMachineName, &plan, p.machine); err != nil {
		return obs, err
	}

	if err := p.createStep(ctx, contract.EnsureNamespaceName, nil, func() {}, p.remote()); err != nil {
		return obs, err
	}
	var volumes contract.VolumesResult
	err = p.createStep(ctx, contract.EnsureVolumesName, &volumes,
		func() { p.created.pvcs = volumes.Created },
		contract.VolumesInput{KubevirtConfig: p.config, Machine: p.machine, Disks: plan.Disks})
	if err != nil {
		return obs, err
	}
	var network contract.NetworkResult
	err = p.createStep(ctx, contract.EnsureNetworkName, &network,
		func() {
			p.created.nad = network.NADCreated
			p.created.networkConfiguration = network.NetworkConfigurationCreated
		},
		contract.NetworkInput{KubevirtConfig: p.config, Machine: p.machine, Network: plan.Network})
	if err != nil {
		return obs, err
	}
	var vm contract.VirtualMachineResult
	// Until EnsureVirtualMachine reports, its cloud-init Secret may exist;
	// once it has, the Secret goes with a VM it created, or stays with the
	// one it adopted.
	p.created.cloudInitSecret = plan.CloudInit
	err = p.createStep(ctx, contract.EnsureVirtualMachineName, &vm,
		func() { p.created.vm, p.created.cloudInitSecret = vm.Created, false },
		contract.VirtualMachineInput{KubevirtConfig: p.config, Plan: plan, Network: network})
	if err != nil {
		return obs, err
	}

	if err := p.writeProgress(ctx, contract.WaitForVirtualMachineName); err != nil {
		return obs, err
	}
	err = p.progress.runWith(ctx, bootWaitOptions(p.bootTimeout), contract.WaitForVirtualMachineName, &obs, p.remote())
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		// Heartbeat timeouts are retried by the server until the
		// ScheduleToClose deadline; a timeout seen here is that deadline.
		return obs, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("VM %s/%s on %s did not reach Running within %s: boot deadline exceeded",
				p.machine.Namespace, p.machine.Name, p.config, p.bootTimeout),
			ErrTypeBootDeadlineExceeded, err)
	}
	return obs, err
}

// step writes the step to the Machine's status, then runs its activity.
func (p *provision) step(ctx workflow.Context, name string, result any, input any) error {
	if err := p.writeProgress(ctx, name); err != nil {
		return err
	}
	return p.progress.run(ctx, name, result, input)
}

// createStep runs an activity that may create objects. It runs in a
// disconnected context so that a cancellation arriving meanwhile does not
// lose its result: record notes what it created, and the cancellation is
// acted on right after.
func (p *provision) createStep(ctx workflow.Context, name string, result any, record func(), input any) error {
	if err := p.writeProgress(ctx, name); err != nil {
		return err
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	if err := p.progress.run(dctx, name, result, input); err != nil {
		return err
	}
	record()
	return ctx.Err()
}

// writeProgress shows the step on the Machine: phase Creating and the
// Provisioning condition with the step as its reason.
func (p *provision) writeProgress(ctx workflow.Context, step string) error {
	p.progress.begin(step)
	return p.setStatus(ctx, contract.PhaseCreating,
		&contract.Condition{Type: ConditionProvisioning, Status: "True", Reason: step}, nil, nil)
}

func (p *provision) setStatus(ctx workflow.Context, phase string, cond *contract.Condition, failure *contract.Failure, obs *contract.VMObservation) error {
	if err := p.attrs.setPhase(ctx, phase); err != nil {
		return fmt.Errorf("upsert search attributes: %w", err)
	}
	return p.progress.run(ctx, contract.UpdateMachineStatusName, nil, contract.StatusUpdate{
		Machine:        p.machine,
		Phase:          phase,
		KubevirtConfig: p.config,
		Condition:      cond,
		Failure:        failure,
		Observation:    obs,
	})
}

// fail compensates and records the outcome on the Machine: Failed with the
// reason, or Pending without a failure when the run was cancelled. It
// returns the workflow's final error.
func (p *provision) fail(ctx workflow.Context, cause error) error {
	cancelled := ctx.Err() != nil
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()

	failure := failureOf(cause)
	p.logger.Warn("provisioning stopped", "cancelled", cancelled, "reason", failure.Reason, "error", failure.Message)
	leftovers := p.compensate(dctx)
	var cleanup string
	if len(leftovers) > 0 {
		cleanup = "; cleanup incomplete: " + strings.Join(leftovers, "; ")
	}

	var err error
	if cancelled {
		err = p.setStatus(dctx, contract.PhasePending, &contract.Condition{
			Type: ConditionProvisioning, Status: "False", Reason: StepCancelled,
			Message: "provisioning was cancelled" + cleanup,
		}, nil, nil)
	} else {
		failure.Message += cleanup
		err = p.setStatus(dctx, contract.PhaseFailed, &contract.Condition{
			Type: ConditionProvisioning, Status: "False", Reason: failure.Reason, Message: failure.Message,
		}, &failure, nil)
	}
	if err != nil {
		p.logger.Error("could not record the outcome on the Machine", "error", err)
	}

	if cancelled {
		p.progress.finish(StepCancelled)
		return temporal.NewCanceledError()
	}
	p.progress.finish(StepFailed)
	return temporal.NewNonRetryableApplicationError(failure.Message, failure.Reason, cause)
}

// compensate deletes what this run created, VM first, and returns what it
// could not delete. Deprovisioning removes leftovers by label later.
func (p *provision) compensate(ctx workflow.Context) []string {
	if !p.created.any() {
		return nil
	}
	p.progress.begin(StepCompensating)
	remote := p.remote()
	var leftovers []string
	del := func(name string, input any) {
		if err := p.progress.run(ctx, name, nil, input); err != nil {
			reason, msg := describeError(err)
			leftovers = append(leftovers, fmt.Sprintf("%s: %s: %s", name, reason, msg))
		}
	}
	// DeleteVirtualMachine removes the VM's cloud-init Secret too, with or
	// without a VM.
	if p.created.vm || p.created.cloudInitSecret &&
		workflow.GetVersion(ctx, cloudInitSecretChange, workflow.DefaultVersion, 1) == 1 {
		del(contract.DeleteVirtualMachineName, remote)
	}
	if len(p.created.pvcs) > 0 {
		del(contract.DeleteVolumesName, contract.DeleteVolumesInput{RemoteMachine: remote, PVCNames: p.created.pvcs})
	}
	if p.created.nad {
		del(contract.DeleteNetworkName, remote)
	}
	if p.created.networkConfiguration {
		del(contract.DeleteNetworkConfigurationName, p.machine)
	}
	return leftovers
}

// failureOf is the Machine's failure for a step error; an activity's own
// failure is led by the activity's name.
func failureOf(err error) contract.Failure {
	reason, msg := describeError(err)
	if actErr, ok := err.(*temporal.ActivityError); ok {
		msg = actErr.ActivityType().GetName() + ": " + msg
	}
	return contract.Failure{Reason: reason, Message: msg}
}
