package activities

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

func TestProfileAccessMode(t *testing.T) {
	block, fs := ptr.To(corev1.PersistentVolumeBlock), ptr.To(corev1.PersistentVolumeFilesystem)
	tests := []struct {
		name string
		sets []cdiv1beta1.ClaimPropertySet
		want string
	}{
		{"no profile sets: PVC_ACCESS_MODE", nil, "ReadWriteMany"},
		{"RWX preferred among sets with our volume mode", []cdiv1beta1.ClaimPropertySet{
			{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeMode: block},
			{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, VolumeMode: block},
		}, "ReadWriteMany"},
		{"first mode of a matching set without RWX", []cdiv1beta1.ClaimPropertySet{
			{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, VolumeMode: fs},
			{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeMode: block},
		}, "ReadWriteOnce"},
		{"sets for another volume mode only: PVC_ACCESS_MODE", []cdiv1beta1.ClaimPropertySet{
			{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeMode: fs},
		}, "ReadWriteMany"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, profileAccessMode(tc.sets, "Block", "ReadWriteMany"))
		})
	}
}
