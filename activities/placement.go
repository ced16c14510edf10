package activities

import (
	"context"
	"fmt"

	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/activity"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// ResolvePlacement chooses the KubevirtConfig of a Machine and records it
// in the placement annotation. A requested config must exist and must not
// contradict an annotation already there: moving a Machine silently would
// orphan its VM.
func (a *Activities) ResolvePlacement(ctx context.Context, in contract.PlacementInput) (contract.Placement, error) {
	ref := in.Machine
	machine, err := a.getMachine(ctx, ref)
	if err != nil {
		return contract.Placement{}, err
	}
	if !names.HandlesProvider(string(machine.Spec.Provider)) {
		return contract.Placement{}, newAppError(contract.ErrTypeUnsupportedProvider, true, nil,
			"Machine %s/%s: spec.provider: %q is not handled by machineflow", ref.Namespace, ref.Name, machine.Spec.Provider)
	}
	current := machine.Annotations[names.PlacementAnnotation]
	config := in.KubevirtConfig
	if config != "" {
		if current != "" && current != config {
			return contract.Placement{}, newAppError(contract.ErrTypeAmbiguousPlacement, true, nil,
				"Machine %s/%s is placed on KubevirtConfig %q (annotation %s) but %q was requested",
				ref.Namespace, ref.Name, current, names.PlacementAnnotation, config)
		}
		if _, err := a.remote(ctx, config); err != nil {
			return contract.Placement{}, err
		}
	} else {
		_, config, err = a.clients.GetOrCreateClientFromMachine(ctx, machine)
		if err != nil {
			return contract.Placement{}, classify(err, fmt.Sprintf("place Machine %s/%s", ref.Namespace, ref.Name))
		}
	}
	if current == config {
		return contract.Placement{KubevirtConfig: config}, nil
	}
	// Optimistic lock: if someone placed the Machine meanwhile, the patch
	// fails with a conflict and the retry re-reads their choice.
	patch := client.MergeFromWithOptions(machine.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if machine.Annotations == nil {
		machine.Annotations = map[string]string{}
	}
	machine.Annotations[names.PlacementAnnotation] = config
	if err := a.supervisor.Patch(ctx, machine, patch); err != nil {
		return contract.Placement{}, classify(err, fmt.Sprintf("annotate Machine %s/%s with its placement", ref.Namespace, ref.Name))
	}
	activity.GetLogger(ctx).Info("placed Machine", "machine", objectName(ref.Namespace, ref.Name), "kubevirtConfig", config)
	return contract.Placement{KubevirtConfig: config}, nil
}

// LookupPlacement returns the recorded placement, "" when the Machine is
// gone or was never placed.
func (a *Activities) LookupPlacement(ctx context.Context, ref contract.MachineRef) (contract.Placement, error) {
	machine := &v1alpha1.Machine{}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, machine)
	if apierrors.IsNotFound(err) {
		return contract.Placement{}, nil
	}
	if err != nil {
		return contract.Placement{}, classify(err, fmt.Sprintf("get Machine %s/%s", ref.Namespace, ref.Name))
	}
	return contract.Placement{KubevirtConfig: machine.Annotations[names.PlacementAnnotation]}, nil
}

// ValidateCluster proves a KubevirtConfig's cluster answers and serves
// KubeVirt.
func (a *Activities) ValidateCluster(ctx context.Context, ref contract.ClusterRef) error {
	return classify(a.clients.ValidateConnection(ctx, ref.KubevirtConfig),
		fmt.Sprintf("validate KubevirtConfig %q", ref.KubevirtConfig))
}

// InvalidateClusterClient drops the cached client of a config, so the next
// use rebuilds it from the (maybe rotated) kubeconfig Secret.
func (a *Activities) InvalidateClusterClient(_ context.Context, ref contract.ClusterRef) error {
	a.clients.InvalidateClient(ref.KubevirtConfig)
	return nil
}
