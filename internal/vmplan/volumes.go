package vmplan

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

func BuildPVC(m contract.MachineRef, d contract.DiskPlan, size resource.Quantity, class, volumeMode, accessMode string) *corev1.PersistentVolumeClaim {
	labels := names.ManagedLabels(m.Name)
	if d.BootOrder == 1 {
		labels[BootPVCLabel] = BootPVCLabelValue
	}
	mode := corev1.PersistentVolumeMode(volumeMode)
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: d.PVCName, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			VolumeMode:  &mode,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(accessMode)},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	// class is only empty when the claim existed a moment ago; should it
	// vanish before ensureObject recreates it, the API server's default
	// StorageClass admission fills the class in.
	if class != "" {
		pvc.Spec.StorageClassName = &class
	}
	return pvc
}
