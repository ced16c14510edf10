package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/machineflow/machineflow/activities/contract"
)

const (
	// ForceUpdate is the update that tells a running DeprovisionMachine to
	// give up on remote cleanup (same as DeprovisionInput.Force).
	ForceUpdate = "force"

	// ErrTypeRemoteCleanupFailed is the failure of a deprovision that could
	// not reach the KubeVirt cluster within RemoteCleanupDeadline.
	ErrTypeRemoteCleanupFailed = "RemoteCleanupFailed"

	// RemoteCleanupDeadline bounds how long an unforced deprovision keeps
	// retrying an unreachable cluster or a missing KubevirtConfig.
	RemoteCleanupDeadline = time.Hour

	firstRetryDelay = 30 * time.Second
	maxRetryDelay   = 5 * time.Minute
	// forcedAttempts bounds each remote delete of a forced deprovision, so
	// an unreachable cluster is given up on in seconds, not after the
	// activity's ScheduleToClose.
	forcedAttempts = 3
)

// DeprovisionMachine removes a Machine's VM and everything created for it.
// It cancels an open ProvisionMachine of the Machine and waits for it to
// close; a Machine never placed is done. Then status Terminating and the
// deletes in order: VM with its cloud-init Secret, volumes, NADs no other
// VM uses (the KubeVirt cluster), NetworkConfiguration (the supervisor). A failing remote step is
// retried in rounds with backoff up to RemoteCleanupDeadline; with Force, or
// after the force update, the first failure gives up on remote cleanup and
// the result lists what was not deleted. The placement annotation stays
// for audit.
func DeprovisionMachine(ctx workflow.Context, in DeprovisionInput) (DeprovisionResult, error) {
	if err := in.Validate(); err != nil {
		return DeprovisionResult{}, invalidInput(DeprovisionMachineName, err)
	}
	progress, err := newTracker(ctx)
	if err != nil {
		return DeprovisionResult{}, err
	}
	d := &deprovision{
		machine:  contract.MachineRef{Namespace: in.Namespace, Name: in.Name},
		force:    in.Force,
		progress: progress,
		logger:   log.With(workflow.GetLogger(ctx), "machineNamespace", in.Namespace, "machineName", in.Name),
	}
	// Registered before the first blocking call so that an early force
	// update is accepted rather than rejected as unknown.
	if err := workflow.SetUpdateHandler(ctx, ForceUpdate, d.forceNow); err != nil {
		return DeprovisionResult{}, fmt.Errorf("register %s update: %w", ForceUpdate, err)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, machineSearchAttributes(in.Namespace, in.Name)...); err != nil {
		return DeprovisionResult{}, fmt.Errorf("upsert search attributes: %w", err)
	}

	res, err := d.run(ctx)
	if err != nil {
		d.progress.finish(StepFailed)
	} else {
		d.progress.finish(StepCompleted)
	}
	// A force update that raced with the end still gets its answer.
	if werr := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); werr != nil && err == nil {
		err = werr
	}
	return res, err
}

// deprovision is the state of one DeprovisionMachine run.
type deprovision struct {
	machine contract.MachineRef
	// force gives up on remote cleanup at its first failure. interrupt is
	// set by a force update and stops the remote delete in flight; a force
	// update that comes earlier acts like the input's force.
	force, interrupt bool
	result           DeprovisionResult
	progress         *tracker
	attrs            searchAttributes
	logger           log.Logger
}

// forceNow is the force update's handler.
func (d *deprovision) forceNow(workflow.Context) error {
	d.logger.Info("force requested: remote cleanup is given up on when it fails")
	d.force, d.interrupt = true, true
	return nil
}

func (d *deprovision) run(ctx workflow.Context) (DeprovisionResult, error) {
	if err := d.cancelProvision(ctx); err != nil {
		return d.result, err
	}

	var placement contract.Placement
	d.progress.begin(contract.LookupPlacementName)
	if err := d.progress.run(ctx, contract.LookupPlacementName, &placement, d.machine); err != nil {
		return d.result, err
	}
	if placement.KubevirtConfig == "" {
		d.logger.Info("machine was never placed: nothing to delete")
		return d.result, d.attrs.setPhase(ctx, contract.PhaseTerminated)
	}
	config := placement.KubevirtConfig
	d.result.KubevirtConfig = config
	if err := d.attrs.setConfig(ctx, config); err != nil {
		return d.result, fmt.Errorf("upsert search attributes: %w", err)
	}
	if err := d.attrs.setPhase(ctx, contract.PhaseTerminating); err != nil {
		return d.result, fmt.Errorf("upsert search attributes: %w", err)
	}
	d.progress.begin(contract.UpdateMachineStatusName)
	err := d.progress.run(ctx, contract.UpdateMachineStatusName, nil, contract.StatusUpdate{
		Machine: d.machine, Phase: contract.PhaseTerminating, KubevirtConfig: config,
	})
	if err != nil && !isErrorType(err, contract.ErrTypeMachineNotFound) {
		return d.result, err
	}

	if err := d.remoteCleanup(ctx, config); err != nil {
		return d.result, err
	}

	// The NetworkConfiguration lives on the supervisor: it is deleted even
	// when remote cleanup was given up on.
	var deleted contract.DeleteResult
	d.progress.begin(contract.DeleteNetworkConfigurationName)
	if err := d.progress.run(ctx, contract.DeleteNetworkConfigurationName, &deleted, d.machine); err != nil {
		return d.result, err
	}
	d.result.Deleted = append(d.result.Deleted, deleted.Deleted...)
	d.logger.Info("machine deprovisioned", "kubevirtConfig", config, "deleted", len(d.result.Deleted), "notDeleted", len(d.result.NotDeleted))
	return d.result, d.attrs.setPhase(ctx, contract.PhaseTerminated)
}

// cancelProvision cancels an open ProvisionMachine of the same Machine and
// waits until it has closed, so that its compensation cannot race with the
// deletions below.
func (d *deprovision) cancelProvision(ctx workflow.Context) error {
	d.progress.begin(StepCancelProvision)
	id := ProvisionWorkflowID(d.machine.Namespace, d.machine.Name)
	err := workflow.RequestCancelExternalWorkflow(ctx, id, "").Get(ctx, nil)
	var notOpen *temporal.UnknownExternalWorkflowExecutionError
	switch {
	case errors.As(err, &notOpen):
		return nil
	case err != nil:
		return fmt.Errorf("cancel workflow %s: %w", id, err)
	}
	// The server accepts a cancellation of a run that has completed as
	// well, so this is not proof that a provision was open: the await
	// returns at once for a closed one.
	d.logger.Info("requested cancellation of the provision; waiting until it is closed", "workflowId", id)
	d.progress.begin(AwaitWorkflowClosedName)
	return d.progress.run(ctx, AwaitWorkflowClosedName, nil, id)
}

// cleanupStep is one remote deletion, in the safe order.
type cleanupStep struct {
	activity string
	input    any
	// what names the objects in DeprovisionResult.NotDeleted.
	what string
}

// remoteCleanup deletes the VM, then the volumes, then the network on the
// KubeVirt cluster. A failing step is retried in rounds with backoff until
// RemoteCleanupDeadline; with force it is given up on, and it and the
// steps after it are reported as not deleted.
func (d *deprovision) remoteCleanup(ctx workflow.Context, config string) error {
	remote := contract.RemoteMachine{KubevirtConfig: config, Machine: d.machine}
	of := fmt.Sprintf("of Machine %s/%s on %s", d.machine.Namespace, d.machine.Name, config)
	steps := []cleanupStep{
		{contract.DeleteVirtualMachineName, remote, fmt.Sprintf("VirtualMachine %s/%s on %s", d.machine.Namespace, d.machine.Name, config)},
		{contract.DeleteVolumesName, contract.DeleteVolumesInput{RemoteMachine: remote}, "PersistentVolumeClaims " + of},
		{contract.DeleteNetworkName, remote, "NetworkAttachmentDefinitions " + of},
	}
	deadline := workflow.Now(ctx).Add(RemoteCleanupDeadline)
	delay := firstRetryDelay
	for next := 0; next < len(steps); {
		err := d.runRemote(ctx, steps[next])
		if err == nil {
			next++
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.force {
			if !workflow.Now(ctx).Add(delay).Before(deadline) {
				reason, msg := describeError(err)
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
					"could not delete the %s within %s (%s: %s); start DeprovisionMachine with force, or send it the %q update, to give up on remote cleanup",
					steps[next].what, RemoteCleanupDeadline, reason, msg, ForceUpdate), ErrTypeRemoteCleanupFailed, err)
			}
			d.progress.begin(StepWaitingToRetry)
			if _, err := workflow.AwaitWithTimeout(ctx, delay, func() bool { return d.force }); err != nil {
				return err
			}
			delay = min(2*delay, maxRetryDelay)
			if !d.force {
				continue
			}
		}
		d.logger.Warn("giving up on remote cleanup", "kubevirtConfig", config, "error", err)
		for _, s := range steps[next:] {
			d.result.NotDeleted = append(d.result.NotDeleted, s.what)
		}
		d.result.Forced = true
		return nil
	}
	return nil
}

// runRemote runs one remote delete; a force update interrupts it.
func (d *deprovision) runRemote(ctx workflow.Context, s cleanupStep) error {
	d.progress.begin(s.activity)
	opts := activityOptions(s.activity)
	if d.force {
		opts.RetryPolicy.MaximumAttempts = forcedAttempts
	}
	d.interrupt = false
	actCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	var (
		deleted contract.DeleteResult
		err     error
		done    bool
	)
	workflow.Go(actCtx, func(gctx workflow.Context) {
		err = d.progress.runWith(gctx, opts, s.activity, &deleted, s.input)
		done = true
	})
	if werr := workflow.Await(ctx, func() bool { return done || d.interrupt }); werr != nil {
		return werr
	}
	if !done {
		cancel()
		// The cancelled activity's future settles at once; wait for it so
		// the coroutine does not outlive this step.
		if werr := workflow.Await(ctx, func() bool { return done }); werr != nil {
			return werr
		}
	}
	if err == nil {
		d.result.Deleted = append(d.result.Deleted, deleted.Deleted...)
	}
	return err
}

// isErrorType reports whether err carries an application error of type t.
func isErrorType(err error, t string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == t
}
