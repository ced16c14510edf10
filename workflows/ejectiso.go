package workflows

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/machineflow/machineflow/activities/contract"
)

// EjectISOName is the workflow type of EjectISO.
const EjectISOName = "EjectISO"

// EjectISOInput starts EjectISO for a Machine.
type EjectISOInput struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Validate reports every problem of the input, naming the JSON field.
func (in EjectISOInput) Validate() error {
	return validateMachineRef(in.Namespace, in.Name)
}

// EjectISOResult says where the Machine runs and what was removed; both
// are empty when there was nothing to do.
type EjectISOResult struct {
	KubevirtConfig string   `json:"kubevirtConfig,omitempty"`
	Deleted        []string `json:"deleted,omitempty"`
}

// EjectISO removes the installation ISO of a Machine whose OS is
// installed: LookupPlacement finds its cluster, CleanupISO removes the
// CD-ROM from the VM, deletes the ISO's DataVolume and claim and annotates
// the Machine. A Machine that is gone or was never placed has nothing to
// remove. Nothing is compensated: removing the ISO is the end state, and a
// failure leaves the Machine without the cleaned-up annotation, so the
// controller starts the workflow again with backoff.
func EjectISO(ctx workflow.Context, in EjectISOInput) (EjectISOResult, error) {
	if err := in.Validate(); err != nil {
		return EjectISOResult{}, invalidInput(EjectISOName, err)
	}
	progress, err := newTracker(ctx)
	if err != nil {
		return EjectISOResult{}, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, machineSearchAttributes(in.Namespace, in.Name)...); err != nil {
		return EjectISOResult{}, fmt.Errorf("upsert search attributes: %w", err)
	}
	res, err := ejectISO(ctx, in, progress)
	if err != nil {
		progress.finish(StepFailed)
	} else {
		progress.finish(StepCompleted)
	}
	return res, err
}

func ejectISO(ctx workflow.Context, in EjectISOInput, progress *tracker) (EjectISOResult, error) {
	logger := log.With(workflow.GetLogger(ctx), "machineNamespace", in.Namespace, "machineName", in.Name)
	machine := contract.MachineRef{Namespace: in.Namespace, Name: in.Name}
	var placement contract.Placement
	progress.begin(contract.LookupPlacementName)
	if err := progress.run(ctx, contract.LookupPlacementName, &placement, machine); err != nil {
		return EjectISOResult{}, err
	}
	if placement.KubevirtConfig == "" {
		logger.Info("machine is gone or was never placed: no ISO to remove")
		return EjectISOResult{}, nil
	}
	var attrs searchAttributes
	if err := attrs.setConfig(ctx, placement.KubevirtConfig); err != nil {
		return EjectISOResult{}, fmt.Errorf("upsert search attributes: %w", err)
	}
	var deleted contract.DeleteResult
	progress.begin(contract.CleanupISOName)
	err := progress.run(ctx, contract.CleanupISOName, &deleted,
		contract.RemoteMachine{KubevirtConfig: placement.KubevirtConfig, Machine: machine})
	if err != nil {
		return EjectISOResult{KubevirtConfig: placement.KubevirtConfig}, err
	}
	logger.Info("ISO removed", "kubevirtConfig", placement.KubevirtConfig, "deleted", len(deleted.Deleted))
	return EjectISOResult{KubevirtConfig: placement.KubevirtConfig, Deleted: deleted.Deleted}, nil
}
