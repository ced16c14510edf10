package testenv

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/names"
)

// A second Start on the same DataDir serves what the first left, with the
// set-up (namespace, StorageClass, StorageProfile, CRDs, KubevirtConfig)
// found rather than failing, and Secrets that hold the new kubeconfigs.
func TestDataDirKeepsObjectsAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("testenv: needs real API servers; skipped with -short")
	}
	dir := t.TempDir()
	ctx := t.Context()
	start := func() *Env {
		env, err := Start(ctx, Options{Clusters: 1, DataDir: dir})
		require.NoError(t, err)
		t.Cleanup(func() { _ = env.Stop() })
		return env
	}

	first := start()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: names.Namespace, Name: "kept"}, Data: map[string]string{"k": "v"}}
	require.NoError(t, first.Supervisor.Client.Create(ctx, cm))
	vm := kubevirtadmission.MinimalVM("default", "kept")
	require.NoError(t, first.Clusters[0].Client.Create(ctx, vm))
	oldKubeconfig := first.Clusters[0].Kubeconfig
	require.NoError(t, first.Stop())
	assert.DirExists(t, filepath.Join(dir, SupervisorName), "the supervisor's etcd data stays")
	assert.DirExists(t, filepath.Join(dir, ClusterName(1)))

	second := start()
	sup, kv := second.Supervisor.Client, second.Clusters[0].Client
	var gotCM corev1.ConfigMap
	require.NoError(t, sup.Get(ctx, client.ObjectKeyFromObject(cm), &gotCM), "the supervisor's objects survive")
	assert.Equal(t, cm.Data, gotCM.Data)
	var gotVM kubevirtv1.VirtualMachine
	require.NoError(t, kv.Get(ctx, client.ObjectKeyFromObject(vm), &gotVM), "the cluster's objects survive")
	assert.Equal(t, vm.UID, gotVM.UID)

	var scs storagev1.StorageClassList
	require.NoError(t, kv.List(ctx, &scs))
	assert.Len(t, scs.Items, 1, "one StorageClass, not a second one")
	var kvcs v1alpha1.KubevirtConfigList
	require.NoError(t, sup.List(ctx, &kvcs))
	require.Len(t, kvcs.Items, 1)

	var secret corev1.Secret
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: names.Namespace, Name: KubeconfigSecretName(ClusterName(1))}, &secret))
	newKubeconfig := secret.Data[names.KubeconfigSecretKey]
	assert.True(t, bytes.Equal(second.Clusters[0].Kubeconfig, newKubeconfig), "the Secret holds this start's kubeconfig")
	assert.False(t, bytes.Equal(oldKubeconfig, newKubeconfig), "certificates and ports are new")
	cfg, err := clientcmd.RESTConfigFromKubeConfig(newKubeconfig)
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: second.Scheme})
	require.NoError(t, err)
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(vm), &gotVM), "the Secret's kubeconfig reaches the restarted cluster")
}
