package activities

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// Annotations that mark a cluster's default StorageClass (the beta one is
// still set by some provisioners).
var defaultClassAnnotations = []string{
	"storageclass.kubernetes.io/is-default-class",
	"storageclass.beta.kubernetes.io/is-default-class",
}

// EnsureNamespace creates the Machine's namespace on the cluster when it is
// missing. Namespaces are shared (think "default"), so an existing one is
// used whoever made it, and machineflow never deletes one.
func (a *Activities) EnsureNamespace(ctx context.Context, rm contract.RemoteMachine) error {
	c, err := a.remote(ctx, rm.KubevirtConfig)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   rm.Machine.Namespace,
		Labels: names.ManagedLabels(rm.Machine.Name),
	}}
	err = c.Get(ctx, client.ObjectKeyFromObject(ns), &corev1.Namespace{})
	if apierrors.IsNotFound(err) {
		err = c.Create(ctx, ns)
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	return classify(err, fmt.Sprintf("ensure namespace %s on %s", ns.Name, rm.KubevirtConfig))
}

// EnsureVolumes creates the plan's blank PVCs (adopting ours that exist).
func (a *Activities) EnsureVolumes(ctx context.Context, in contract.VolumesInput) (contract.VolumesResult, error) {
	c, err := a.remote(ctx, in.KubevirtConfig)
	if err != nil {
		return contract.VolumesResult{}, err
	}
	res := contract.VolumesResult{Volumes: []contract.VolumeStatus{}}
	class, accessMode := "", a.settings.PVCAccessMode
	for i, d := range in.Disks {
		size, err := resource.ParseQuantity(d.Size)
		if err != nil || size.Sign() <= 0 {
			return contract.VolumesResult{}, invalidSpec(in.Machine, fmt.Sprintf("disks[%d].size", i), "%q is not a positive quantity", d.Size)
		}
		// Resolve storage only when a PVC is actually missing: adopted
		// volumes need neither a StorageClass nor a StorageProfile.
		key := client.ObjectKey{Namespace: in.Machine.Namespace, Name: d.PVCName}
		if err := c.Get(ctx, key, &corev1.PersistentVolumeClaim{}); apierrors.IsNotFound(err) && class == "" {
			if class, err = a.storageClass(ctx, c, in.KubevirtConfig); err != nil {
				return contract.VolumesResult{}, err
			}
			if accessMode, err = a.accessMode(ctx, c, in.KubevirtConfig, class); err != nil {
				return contract.VolumesResult{}, err
			}
		} else if err != nil && !apierrors.IsNotFound(err) {
			return contract.VolumesResult{}, classify(err, fmt.Sprintf("get PVC %s on %s", objectName(key.Namespace, key.Name), in.KubevirtConfig))
		}
		pvc := vmplan.BuildPVC(in.Machine, d, size, class, a.settings.PVCVolumeMode, accessMode)
		obj, created, err := ensureObject(ctx, c, in.KubevirtConfig, "PersistentVolumeClaim", pvc)
		if err != nil {
			return contract.VolumesResult{}, err
		}
		if created {
			res.Created = append(res.Created, d.PVCName)
		}
		res.Volumes = append(res.Volumes, volumeStatus(obj.(*corev1.PersistentVolumeClaim)))
	}
	return res, nil
}

func volumeStatus(pvc *corev1.PersistentVolumeClaim) contract.VolumeStatus {
	v := contract.VolumeStatus{PVCName: pvc.Name}
	if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		v.Size = q.String()
	}
	if pvc.Spec.StorageClassName != nil {
		v.StorageClass = *pvc.Spec.StorageClassName
	}
	if pvc.Spec.VolumeMode != nil {
		v.VolumeMode = string(*pvc.Spec.VolumeMode)
	}
	for _, m := range pvc.Spec.AccessModes {
		v.AccessModes = append(v.AccessModes, string(m))
	}
	return v
}

// storageClass is STORAGE_CLASS_NAME, which must exist, else the cluster's
// default StorageClass.
func (a *Activities) storageClass(ctx context.Context, c client.Client, cluster string) (string, error) {
	if name := a.settings.StorageClassName; name != "" {
		err := c.Get(ctx, client.ObjectKey{Name: name}, &storagev1.StorageClass{})
		if apierrors.IsNotFound(err) {
			return "", newAppError(contract.ErrTypeStorageClassNotFound, true, nil,
				"StorageClass %q (STORAGE_CLASS_NAME) does not exist on %s", name, cluster)
		}
		return name, classify(err, fmt.Sprintf("get StorageClass %s on %s", name, cluster))
	}
	list := &storagev1.StorageClassList{}
	if err := c.List(ctx, list); err != nil {
		return "", classify(err, "list StorageClasses on "+cluster)
	}
	var defaults []string
	for _, sc := range list.Items {
		for _, ann := range defaultClassAnnotations {
			if sc.Annotations[ann] == "true" {
				defaults = append(defaults, sc.Name)
				break
			}
		}
	}
	if len(defaults) == 0 {
		return "", newAppError(contract.ErrTypeStorageClassNotFound, true, nil,
			"%s has no default StorageClass and STORAGE_CLASS_NAME is not set", cluster)
	}
	// Kubernetes itself picks the newest of several defaults; we want a
	// stable answer, so the first by name.
	sort.Strings(defaults)
	return defaults[0], nil
}

// accessMode comes from the class's CDI StorageProfile (a claim property set
// with our volume mode, ReadWriteMany preferred), else PVC_ACCESS_MODE.
// Clusters without CDI have no StorageProfiles, which is fine.
func (a *Activities) accessMode(ctx context.Context, c client.Client, cluster, class string) (string, error) {
	profile := &cdiv1beta1.StorageProfile{}
	err := c.Get(ctx, client.ObjectKey{Name: class}, profile)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return a.settings.PVCAccessMode, nil
	}
	if err != nil {
		return "", classify(err, fmt.Sprintf("get StorageProfile %s on %s", class, cluster))
	}
	return profileAccessMode(profile.Status.ClaimPropertySets, a.settings.PVCVolumeMode, a.settings.PVCAccessMode), nil
}

func profileAccessMode(sets []cdiv1beta1.ClaimPropertySet, volumeMode, fallback string) string {
	first := ""
	for _, set := range sets {
		mode := corev1.PersistentVolumeFilesystem
		if set.VolumeMode != nil {
			mode = *set.VolumeMode
		}
		if string(mode) != volumeMode {
			continue
		}
		for _, am := range set.AccessModes {
			if am == corev1.ReadWriteMany {
				return string(am)
			}
			if first == "" {
				first = string(am)
			}
		}
	}
	if first == "" {
		return fallback
	}
	return first
}
