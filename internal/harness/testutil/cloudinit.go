package testutil

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RequireCloudInitInSecret asserts that vm carries no cloud-init payload,
// only a reference to a Secret next to it, and returns that Secret as c
// reads it.
func RequireCloudInitInSecret(t *testing.T, c client.Client, vm *kubevirtv1.VirtualMachine) *corev1.Secret {
	t.Helper()
	var source *kubevirtv1.CloudInitNoCloudSource
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.CloudInitNoCloud != nil {
			source = v.CloudInitNoCloud
		}
	}
	require.NotNil(t, source, "VM %s/%s has a cloud-init volume", vm.Namespace, vm.Name)
	assert.Empty(t, source.UserData+source.UserDataBase64+source.NetworkData+source.NetworkDataBase64,
		"VM %s/%s carries no cloud-init payload", vm.Namespace, vm.Name)
	require.NotNil(t, source.UserDataSecretRef, "VM %s/%s references its cloud-init Secret", vm.Namespace, vm.Name)
	secret := &corev1.Secret{}
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: vm.Namespace, Name: source.UserDataSecretRef.Name}, secret))
	return secret
}
