package activities

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"

	"go.temporal.io/sdk/activity"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// EnsureVirtualMachine creates the Machine's VM unless it exists. An
// existing VM of ours is adopted as is (the operator never updated VMs
// either), so the expensive parts (cloud-init reads, the ISO HEAD request)
// only run when a VM is actually created. The VM's cloud-init Secret is
// written first, created or brought up to date, because the VM's pod
// cannot start without it; it is written here rather than by an activity
// of its own so that the payload never travels between activities.
func (a *Activities) EnsureVirtualMachine(ctx context.Context, in contract.VirtualMachineInput) (contract.VirtualMachineResult, error) {
	ref := in.Plan.Machine
	res := contract.VirtualMachineResult{Namespace: ref.Namespace, Name: ref.Name}
	c, err := a.remote(ctx, in.KubevirtConfig)
	if err != nil {
		return contract.VirtualMachineResult{}, err
	}
	key := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	existing := &kubevirtv1.VirtualMachine{}
	err = c.Get(ctx, key, existing)
	switch {
	case err == nil && isManaged(existing):
		return res, nil
	case err == nil:
		return contract.VirtualMachineResult{}, conflict(in.KubevirtConfig, "VirtualMachine", ref.Namespace, ref.Name)
	case !apierrors.IsNotFound(err):
		return contract.VirtualMachineResult{}, classify(err, fmt.Sprintf("get VirtualMachine %s/%s on %s", ref.Namespace, ref.Name, in.KubevirtConfig))
	}

	machine, err := a.getMachine(ctx, ref)
	if err != nil {
		return contract.VirtualMachineResult{}, err
	}
	imageURL, err := vmplan.BootImage(machine, in.Plan.Boot)
	if err != nil {
		return contract.VirtualMachineResult{}, fromPlan(err)
	}
	spec := vmplan.VMInput{
		Plan:               in.Plan,
		Network:            in.Network,
		CPUModel:           a.settings.CPUModel,
		ImageURL:           imageURL,
		ISOAccessMode:      corev1.PersistentVolumeAccessMode(a.settings.PVCAccessMode),
		MachineAnnotations: machine.Annotations,
	}
	if spec.CloudInit, err = a.resolveCloudInit(ctx, machine, in.Plan.Network); err != nil {
		return contract.VirtualMachineResult{}, err
	}
	if in.Plan.Boot.ISO {
		spec.ISOSize = a.isoSize(ctx, in.Plan.Boot.ISOSourceType, imageURL)
	}
	vm, err := vmplan.BuildVirtualMachine(spec)
	if err != nil {
		return contract.VirtualMachineResult{}, fromPlan(err)
	}
	var secret *corev1.Secret
	if spec.CloudInit != nil {
		if secret, err = vmplan.BuildCloudInitSecret(ref, *spec.CloudInit); err != nil {
			return contract.VirtualMachineResult{}, fromPlan(err)
		}
		if err := ensureCloudInitSecret(ctx, c, in.KubevirtConfig, secret); err != nil {
			return contract.VirtualMachineResult{}, err
		}
	}
	_, created, err := ensureObject(ctx, c, in.KubevirtConfig, "VirtualMachine", vm)
	if err != nil {
		if secret != nil && isFinal(err) {
			// No VM of ours will use the Secret. Errors that are retried
			// keep it for the next attempt.
			rm := contract.RemoteMachine{KubevirtConfig: in.KubevirtConfig, Machine: ref}
			if derr := a.deleteCloudInitSecret(ctx, c, rm, &contract.DeleteResult{}); derr != nil {
				activity.GetLogger(ctx).Warn("could not delete the cloud-init Secret of a VM that was not created",
					"secret", objectName(ref.Namespace, secret.Name), "kubevirtConfig", in.KubevirtConfig, "error", derr)
			}
		}
		return contract.VirtualMachineResult{}, err
	}
	res.Created = created
	return res, nil
}

// ensureCloudInitSecret creates the VM's cloud-init Secret, or updates one
// of ours whose data or labels differ (a retry after the Machine's
// cloud-init changed). A Secret of that name that is not ours is a
// conflict, never overwritten.
func ensureCloudInitSecret(ctx context.Context, c client.Client, cluster string, desired *corev1.Secret) error {
	obj, created, err := ensureObject(ctx, c, cluster, "Secret", desired)
	if err != nil || created {
		return err
	}
	existing := obj.(*corev1.Secret)
	sameLabels := true
	for k, v := range desired.Labels {
		sameLabels = sameLabels && existing.Labels[k] == v
	}
	if sameLabels && maps.EqualFunc(existing.Data, desired.Data, bytes.Equal) {
		return nil
	}
	maps.Copy(existing.Labels, desired.Labels)
	existing.Data = desired.Data
	// The update carries the resourceVersion just read: a concurrent
	// change is a conflict, retried by the activity's policy.
	if err := c.Update(ctx, existing); err != nil {
		return classify(err, fmt.Sprintf("update Secret %s on %s", objectName(existing.Namespace, existing.Name), cluster))
	}
	return nil
}

// isoSize sizes the ISO DataVolume: the image's Content-Length plus 10%,
// rounded up to whole Gi, or Settings.DefaultISOSize when the size cannot
// be learned (registry sources, errors, no Content-Length).
func (a *Activities) isoSize(ctx context.Context, sourceType, imageURL string) resource.Quantity {
	fallback := resource.MustParse(a.settings.DefaultISOSize)
	if sourceType == vmplan.ISOSourceRegistry {
		return fallback
	}
	logger := activity.GetLogger(ctx)
	where := vmplan.RedactURL(imageURL)
	hctx, cancel := context.WithTimeout(ctx, a.settings.ISOHeadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodHead, imageURL, nil)
	if err != nil {
		logger.Warn("ISO size: bad request, using the default", "url", where, "error", err)
		return fallback
	}
	resp, err := a.http.Do(req)
	if err != nil {
		logger.Warn("ISO size: HEAD failed, using the default", "url", where, "error", err)
		return fallback
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		logger.Warn("ISO size unknown, using the default", "url", where, "status", resp.StatusCode, "contentLength", resp.ContentLength)
		return fallback
	}
	return vmplan.ISOSize(resp.ContentLength)
}
