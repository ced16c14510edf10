package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/activity"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// Deletion only ever touches objects labelled as ours, and every delete
// succeeds when there is nothing (left) to delete, so compensation and
// deprovisioning can run them in any state and any number of times.

// DeleteVirtualMachine deletes the Machine's VM if it is ours and waits,
// heartbeating, until the VM and its VMI are gone; then the VM's cloud-init
// Secret, which the VM's pod reads until then. The Secret goes with the VM
// rather than in an activity of its own so that compensation and
// deprovisioning, which already delete the VM, remove it as well.
func (a *Activities) DeleteVirtualMachine(ctx context.Context, rm contract.RemoteMachine) (contract.DeleteResult, error) {
	c, err := a.remote(ctx, rm.KubevirtConfig)
	if err != nil {
		return contract.DeleteResult{}, err
	}
	key := client.ObjectKey{Namespace: rm.Machine.Namespace, Name: rm.Machine.Name}
	where := fmt.Sprintf("%s on %s", objectName(key.Namespace, key.Name), rm.KubevirtConfig)
	res := contract.DeleteResult{}
	vm := &kubevirtv1.VirtualMachine{}
	err = c.Get(ctx, key, vm)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return contract.DeleteResult{}, classify(err, "get VirtualMachine "+where)
	case !isManaged(vm):
		activity.GetLogger(ctx).Warn("VirtualMachine is not ours, leaving it", "virtualMachine", where)
		return res, a.deleteCloudInitSecret(ctx, c, rm, &res)
	default:
		if err := c.Delete(ctx, vm); err != nil && !apierrors.IsNotFound(err) {
			return contract.DeleteResult{}, classify(err, "delete VirtualMachine "+where)
		}
		res.Deleted = append(res.Deleted, "VirtualMachine "+where)
	}
	err = a.waitGone(ctx, func() (string, error) {
		// A new client per look, as in WaitForVirtualMachine: the wait
		// may outlive the credentials it started with.
		c, err := a.remote(ctx, rm.KubevirtConfig)
		if err != nil {
			return "", err
		}
		for _, o := range []struct {
			kind string
			obj  client.Object
		}{{"VirtualMachine", &kubevirtv1.VirtualMachine{}}, {"VirtualMachineInstance", &kubevirtv1.VirtualMachineInstance{}}} {
			obj := o.obj
			err := c.Get(ctx, key, obj)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return "", classify(err, "get "+where)
			}
			if !isManaged(obj) {
				continue // not ours to wait for
			}
			return o.kind + " " + where + " still exists", nil
		}
		return "", nil
	})
	if err != nil {
		return contract.DeleteResult{}, err
	}
	// A new client, as in the wait: its credentials may have been rotated.
	if c, err = a.remote(ctx, rm.KubevirtConfig); err != nil {
		return contract.DeleteResult{}, err
	}
	return res, a.deleteCloudInitSecret(ctx, c, rm, &res)
}

// deleteCloudInitSecret deletes the VM's cloud-init Secret if it is ours.
// It reads the Secret's metadata only: deciding needs no payload. Where the
// worker may not read Secrets (a namespace that did not opt in, see
// deploy/kubevirt-cluster), it cannot have written one either, so a Machine
// without cloud-init is deprovisioned there all the same.
func (a *Activities) deleteCloudInitSecret(ctx context.Context, c client.Client, rm contract.RemoteMachine, res *contract.DeleteResult) error {
	name := vmplan.CloudInitSecretName(rm.Machine.Name)
	// A Machine name too long for this was refused by LoadMachine, before
	// anything was made under it.
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return nil
	}
	key := client.ObjectKey{Namespace: rm.Machine.Namespace, Name: name}
	secret := &metav1.PartialObjectMetadata{}
	secret.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := c.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsForbidden(err):
		activity.GetLogger(ctx).Info("may not read Secrets here, so there is no cloud-init Secret of ours to delete",
			"secret", objectName(key.Namespace, key.Name), "kubevirtConfig", rm.KubevirtConfig)
		return nil
	case err != nil:
		return classify(err, fmt.Sprintf("get Secret %s on %s", objectName(key.Namespace, key.Name), rm.KubevirtConfig))
	case !isManaged(secret):
		activity.GetLogger(ctx).Warn("Secret is not ours, leaving it", "secret", objectName(key.Namespace, key.Name), "kubevirtConfig", rm.KubevirtConfig)
		return nil
	}
	return a.deleteOnce(ctx, c, rm.KubevirtConfig, "Secret", secret, res)
}

// waitGone polls pending with backoff until it reports nothing pending,
// heartbeating what it waits for.
func (a *Activities) waitGone(ctx context.Context, pending func() (string, error)) error {
	delay := a.settings.PollInitial
	for {
		what, err := pending()
		if err != nil || what == "" {
			return err
		}
		activity.RecordHeartbeat(ctx, what)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		delay = min(delay*2, a.settings.PollMax)
	}
}

// DeleteVolumes deletes the Machine's PVCs (only PVCNames, when given) and
// its ISO DataVolume and claim. It does not wait: a claim finishes
// terminating once no pod uses it, which is KubeVirt's business.
func (a *Activities) DeleteVolumes(ctx context.Context, in contract.DeleteVolumesInput) (contract.DeleteResult, error) {
	c, err := a.remote(ctx, in.KubevirtConfig)
	if err != nil {
		return contract.DeleteResult{}, err
	}
	ns, vm := in.Machine.Namespace, in.Machine.Name
	res := contract.DeleteResult{}
	pvcs := &corev1.PersistentVolumeClaimList{}
	// A name that is no label value labels nothing (LoadMachine refuses
	// it before anything is made), and the API server answers a selector
	// with it 400: listing would fail the Machine's deletion for good.
	if len(validation.IsValidLabelValue(vm)) == 0 {
		if err := c.List(ctx, pvcs, client.InNamespace(ns), ownedBy(vm)); err != nil {
			return contract.DeleteResult{}, classify(err, fmt.Sprintf("list PVCs of %s/%s on %s", ns, vm, in.KubevirtConfig))
		}
	}
	iso := vmplan.ISOName(vm)
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if len(in.PVCNames) > 0 && !slices.Contains(in.PVCNames, pvc.Name) && pvc.Name != iso {
			continue
		}
		if err := a.deleteOnce(ctx, c, in.KubevirtConfig, "PersistentVolumeClaim", pvc, &res); err != nil {
			return contract.DeleteResult{}, err
		}
	}
	if err := a.deleteISOVolume(ctx, c, in.RemoteMachine, &res); err != nil {
		return contract.DeleteResult{}, err
	}
	return res, nil
}

// deleteISOVolume deletes the Machine's ISO DataVolume <vm>-iso when it is
// ours, and the claim of that name when it is ours too: labelled, or owned
// by the DataVolume just found to be ours (CDI creates the claim for the
// DataVolume and may not copy our labels onto it).
func (a *Activities) deleteISOVolume(ctx context.Context, c client.Client, rm contract.RemoteMachine, res *contract.DeleteResult) error {
	key := client.ObjectKey{Namespace: rm.Machine.Namespace, Name: vmplan.ISOName(rm.Machine.Name)}
	where := fmt.Sprintf("%s on %s", objectName(key.Namespace, key.Name), rm.KubevirtConfig)
	dv := &cdiv1beta1.DataVolume{}
	var ourDV types.UID
	err := c.Get(ctx, key, dv)
	switch {
	case apierrors.IsNotFound(err), meta.IsNoMatchError(err):
	case err != nil:
		return classify(err, "get DataVolume "+where)
	case isManaged(dv):
		ourDV = dv.UID
		if err := a.deleteOnce(ctx, c, rm.KubevirtConfig, "DataVolume", dv, res); err != nil {
			return err
		}
	}
	pvc := &corev1.PersistentVolumeClaim{}
	err = c.Get(ctx, key, pvc)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return classify(err, "get PVC "+where)
	case isManaged(pvc) || (ourDV != "" && ownedByUID(pvc, ourDV)):
		return a.deleteOnce(ctx, c, rm.KubevirtConfig, "PersistentVolumeClaim", pvc, res)
	}
	return nil
}

// deleteOnce deletes obj unless it is already terminating, recording it.
func (a *Activities) deleteOnce(ctx context.Context, c client.Client, cluster, kind string, obj client.Object, res *contract.DeleteResult) error {
	if obj.GetDeletionTimestamp() != nil {
		return nil
	}
	name := fmt.Sprintf("%s %s on %s", kind, objectName(obj.GetNamespace(), obj.GetName()), cluster)
	if err := c.Delete(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return classify(err, "delete "+name)
	}
	res.Deleted = append(res.Deleted, name)
	return nil
}

func ownedByKind(obj client.Object, kind, name string) bool {
	for _, o := range obj.GetOwnerReferences() {
		if o.Kind == kind && o.Name == name {
			return true
		}
	}
	return false
}

func ownedByUID(obj client.Object, uid types.UID) bool {
	for _, o := range obj.GetOwnerReferences() {
		if o.UID == uid {
			return true
		}
	}
	return false
}

// DeleteNetwork deletes the NetworkAttachmentDefinitions that machineflow
// created in the Machine's namespace and that no live VM references. NADs
// are shared by every Machine on the same VLAN, so the last one out removes
// it; NADs made by anyone else are never touched.
func (a *Activities) DeleteNetwork(ctx context.Context, rm contract.RemoteMachine) (contract.DeleteResult, error) {
	c, err := a.remote(ctx, rm.KubevirtConfig)
	if err != nil {
		return contract.DeleteResult{}, err
	}
	ns := rm.Machine.Namespace
	nads := &unstructured.UnstructuredList{}
	nads.SetGroupVersionKind(vmplan.NADGVK.GroupVersion().WithKind(vmplan.NADGVK.Kind + "List"))
	err = c.List(ctx, nads, client.InNamespace(ns), client.MatchingLabels{names.ManagedByLabel: names.ManagedByValue})
	if meta.IsNoMatchError(err) {
		return contract.DeleteResult{}, nil
	}
	if err != nil {
		return contract.DeleteResult{}, classify(err, fmt.Sprintf("list NetworkAttachmentDefinitions in %s on %s", ns, rm.KubevirtConfig))
	}
	if len(nads.Items) == 0 {
		return contract.DeleteResult{}, nil
	}
	vms := &kubevirtv1.VirtualMachineList{}
	if err := c.List(ctx, vms, client.InNamespace(ns)); err != nil {
		return contract.DeleteResult{}, classify(err, fmt.Sprintf("list VirtualMachines in %s on %s", ns, rm.KubevirtConfig))
	}
	inUse := map[string]bool{}
	for _, vm := range vms.Items {
		if vm.DeletionTimestamp != nil || vm.Spec.Template == nil {
			continue
		}
		for _, n := range vm.Spec.Template.Spec.Networks {
			if n.Multus != nil {
				// networkName is "name" or "namespace/name".
				ref := n.Multus.NetworkName
				if i := strings.LastIndex(ref, "/"); i >= 0 {
					if ref[:i] != ns {
						continue
					}
					ref = ref[i+1:]
				}
				inUse[ref] = true
			}
		}
	}
	res := contract.DeleteResult{}
	for i := range nads.Items {
		nad := &nads.Items[i]
		if inUse[nad.GetName()] {
			continue
		}
		if err := a.deleteOnce(ctx, c, rm.KubevirtConfig, vmplan.NADGVK.Kind, nad, &res); err != nil {
			return contract.DeleteResult{}, err
		}
	}
	return res, nil
}

// DeleteNetworkConfiguration deletes the Machine's NetworkConfiguration on
// the supervisor when it is ours (labelled, or owned by a Machine of that
// name). Unlike the operator it never blocks on labels or MACs: a foreign
// object is left alone and deletion carries on.
func (a *Activities) DeleteNetworkConfiguration(ctx context.Context, ref contract.MachineRef) (contract.DeleteResult, error) {
	nc := &v1alpha1.NetworkConfiguration{}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, nc)
	if apierrors.IsNotFound(err) {
		return contract.DeleteResult{}, nil
	}
	if err != nil {
		return contract.DeleteResult{}, classify(err, fmt.Sprintf("get NetworkConfiguration %s/%s", ref.Namespace, ref.Name))
	}
	if !isManaged(nc) && !ownedByKind(nc, "Machine", ref.Name) {
		activity.GetLogger(ctx).Warn("NetworkConfiguration is not ours, leaving it", "networkConfiguration", objectName(ref.Namespace, ref.Name))
		return contract.DeleteResult{}, nil
	}
	res := contract.DeleteResult{}
	if err := a.deleteOnce(ctx, a.supervisor, "the supervisor", "NetworkConfiguration", nc, &res); err != nil {
		return contract.DeleteResult{}, err
	}
	return res, nil
}
