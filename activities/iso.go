package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/activity"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// isoPatchAttempts bounds the re-reads when the VM changes between our read
// and our patch (the patch's test operations then fail).
const isoPatchAttempts = 3

// CleanupISO removes the installation ISO of a Machine booted from one,
// once its annotations say the OS is installed: the cdrom-iso disk, its
// volume and the <vm>-iso DataVolumeTemplate go from the VM spec (a JSON
// patch that removes exactly those entries and keeps everything else),
// the <vm>-iso DataVolume and claim are deleted when they are ours, and the
// Machine is annotated vitistack.io/iso-cleaned-up. A running VM keeps the
// CD-ROM until it restarts (KubeVirt reports RestartRequired); the claim
// finishes terminating then.
//
// It is idempotent: with the annotation written and no cdrom-iso in the VM
// there is nothing to do. A Machine that is gone needs nothing either; one
// without a trigger annotation is refused, because its ISO may still be
// installing the OS.
func (a *Activities) CleanupISO(ctx context.Context, rm contract.RemoteMachine) (contract.DeleteResult, error) {
	ref := rm.Machine
	machine := &v1alpha1.Machine{}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, machine)
	if apierrors.IsNotFound(err) {
		activity.GetLogger(ctx).Info("Machine is gone, no ISO to clean up", "machine", objectName(ref.Namespace, ref.Name))
		return contract.DeleteResult{}, nil
	}
	if err != nil {
		return contract.DeleteResult{}, classify(err, fmt.Sprintf("get Machine %s/%s", ref.Namespace, ref.Name))
	}
	if !names.ISOCleanupTriggered(machine.Annotations) {
		return contract.DeleteResult{}, invalidSpec(ref, "metadata.annotations",
			"neither %s nor %s is \"true\": the ISO may still be installing the OS", names.CDROMEjectedAnnotation, names.OSInstalledAnnotation)
	}
	c, err := a.remote(ctx, rm.KubevirtConfig)
	if err != nil {
		return contract.DeleteResult{}, err
	}

	res := contract.DeleteResult{}
	ejected, err := a.ejectISO(ctx, c, rm)
	if err != nil {
		return contract.DeleteResult{}, err
	}
	if ejected != "" {
		res.Deleted = append(res.Deleted, ejected)
	} else if machine.Annotations[names.ISOCleanedUpAnnotation] == "true" {
		return res, nil
	}
	if err := a.deleteISOVolume(ctx, c, rm, &res); err != nil {
		return contract.DeleteResult{}, err
	}
	if machine.Annotations[names.ISOCleanedUpAnnotation] != "true" {
		// A merge patch of one annotation cannot drop anyone else's change.
		patch := client.MergeFrom(machine.DeepCopy())
		if machine.Annotations == nil {
			machine.Annotations = map[string]string{}
		}
		machine.Annotations[names.ISOCleanedUpAnnotation] = "true"
		if err := a.supervisor.Patch(ctx, machine, patch); err != nil {
			if apierrors.IsNotFound(err) {
				return res, nil
			}
			return contract.DeleteResult{}, classify(err, fmt.Sprintf("annotate Machine %s/%s with %s", ref.Namespace, ref.Name, names.ISOCleanedUpAnnotation))
		}
	}
	activity.GetLogger(ctx).Info("ISO cleaned up", "machine", objectName(ref.Namespace, ref.Name),
		"kubevirtConfig", rm.KubevirtConfig, "deleted", len(res.Deleted))
	return res, nil
}

// ejectISO patches the ISO out of the Machine's VM and says what it
// removed ("" when the VM is absent or has no ISO left).
func (a *Activities) ejectISO(ctx context.Context, c client.Client, rm contract.RemoteMachine) (string, error) {
	key := client.ObjectKey{Namespace: rm.Machine.Namespace, Name: rm.Machine.Name}
	where := fmt.Sprintf("VirtualMachine %s on %s", objectName(key.Namespace, key.Name), rm.KubevirtConfig)
	var err error
	for range isoPatchAttempts {
		vm := &kubevirtv1.VirtualMachine{}
		err = c.Get(ctx, key, vm)
		switch {
		case apierrors.IsNotFound(err):
			return "", nil
		case err != nil:
			return "", classify(err, "get "+where)
		case !isManaged(vm):
			return "", conflict(rm.KubevirtConfig, "VirtualMachine", key.Namespace, key.Name)
		}
		ops := isoRemoval(vm)
		if len(ops) == 0 {
			return "", nil
		}
		body, merr := json.Marshal(ops)
		if merr != nil {
			return "", fmt.Errorf("encode the ISO patch of %s: %w", where, merr)
		}
		err = c.Patch(ctx, vm, client.RawPatch(types.JSONPatchType, body))
		if err == nil {
			return "ISO " + vmplan.CDROMDiskName + " of " + where, nil
		}
		// A failed test operation is Invalid: the VM changed since we read
		// it. Read it again rather than guess at its new layout.
		if !apierrors.IsInvalid(err) && !apierrors.IsConflict(err) {
			break
		}
	}
	return "", classify(err, "remove the ISO from "+where)
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value,omitempty"`
}

// isoRemoval returns the JSON patch that removes the cdrom-iso disk and
// volume and the <vm>-iso DataVolumeTemplate from vm, nil when it has none
// of them. Every removal is guarded by a test of the entry's name, so that
// a VM changed since it was read fails the patch instead of losing the
// wrong entry; indices are removed from the highest down so that each
// path is still valid when its turn comes.
func isoRemoval(vm *kubevirtv1.VirtualMachine) []jsonPatchOp {
	var ops []jsonPatchOp
	remove := func(list string, namePath string, names []string, want string) {
		for i := len(names) - 1; i >= 0; i-- {
			if names[i] != want {
				continue
			}
			at := list + "/" + strconv.Itoa(i)
			ops = append(ops, jsonPatchOp{Op: "test", Path: at + namePath, Value: want}, jsonPatchOp{Op: "remove", Path: at})
		}
	}
	var dvts []string
	for _, t := range vm.Spec.DataVolumeTemplates {
		dvts = append(dvts, t.Name)
	}
	remove("/spec/dataVolumeTemplates", "/metadata/name", dvts, vmplan.ISOName(vm.Name))
	if tmpl := vm.Spec.Template; tmpl != nil {
		var disks, volumes []string
		for _, d := range tmpl.Spec.Domain.Devices.Disks {
			disks = append(disks, d.Name)
		}
		for _, v := range tmpl.Spec.Volumes {
			volumes = append(volumes, v.Name)
		}
		remove("/spec/template/spec/domain/devices/disks", "/name", disks, vmplan.CDROMDiskName)
		remove("/spec/template/spec/volumes", "/name", volumes, vmplan.CDROMDiskName)
	}
	return ops
}
