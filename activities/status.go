package activities

import (
	"context"
	"fmt"

	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/activity"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/vmstatus"
)

// UpdateMachineStatus merges an update into the Machine's status and writes
// it only when something changed. A Machine that is gone has no status to
// write: that is not an error (deprovisioning ends with the Machine gone).
func (a *Activities) UpdateMachineStatus(ctx context.Context, upd contract.StatusUpdate) (contract.StatusResult, error) {
	ref := upd.Machine
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		machine := &v1alpha1.Machine{}
		if err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, machine); err != nil {
			return err
		}
		merged, diff := vmstatus.Merge(machine.Status, upd, a.now())
		if !diff {
			changed = false
			return nil
		}
		machine.Status = merged
		if err := a.supervisor.Status().Update(ctx, machine); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if apierrors.IsNotFound(err) {
		activity.GetLogger(ctx).Info("Machine is gone, status not written", "machine", objectName(ref.Namespace, ref.Name))
		return contract.StatusResult{}, nil
	}
	if err != nil {
		return contract.StatusResult{}, classify(err, fmt.Sprintf("write status of Machine %s/%s", ref.Namespace, ref.Name))
	}
	return contract.StatusResult{Changed: changed}, nil
}
