package testenv

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/names"
)

// A cluster stopped alone is unreachable while the others answer, and
// started again it serves its old objects and CRDs at the same address to
// every client made before: the admin's, the registered kubeconfig's and
// an added user's.
func TestClusterStopStartKeepsAddressCredentialsAndData(t *testing.T) {
	env := New(t, Options{Clusters: 1})
	ctx := t.Context()
	c := env.Clusters[0]
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kept"}, Data: map[string]string{"k": "v"}}
	require.NoError(t, c.Client.Create(ctx, cm))
	registered := clientFrom(t, env, c.Kubeconfig)
	host := c.Config.Host

	require.Error(t, c.Start(ctx), "a running cluster is not started twice")
	require.NoError(t, c.Stop())
	require.Error(t, c.Stop(), "nor stopped twice")
	err := c.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
	var netErr net.Error
	assert.True(t, errors.As(err, &netErr), "a stopped cluster does not answer: %v", err)
	require.NoError(t, env.Supervisor.Client.Get(ctx, client.ObjectKey{Name: names.Namespace}, &corev1.Namespace{}), "the supervisor still answers")

	require.NoError(t, c.Start(ctx))
	assert.Equal(t, host, c.Config.Host, "same address")
	for name, cl := range map[string]client.Client{"admin": c.Client, "registered kubeconfig": registered} {
		var got corev1.ConfigMap
		require.NoError(t, cl.Get(ctx, client.ObjectKeyFromObject(cm), &got), name)
		assert.Equal(t, cm.Data, got.Data, name)
		var vms kubevirtv1.VirtualMachineList
		assert.NoError(t, cl.List(ctx, &vms), "%s: the KubeVirt CRDs are served once Start returns", name)
	}
	assert.NoError(t, kubevirtadmission.Probe(ctx, c.Client), "KubeVirt's admission is live again once Start returns")
	require.NoError(t, c.Stop(), "a second restart works too")
	require.NoError(t, c.Start(ctx))
	require.NoError(t, c.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}))

	require.NoError(t, env.Stop())
	assert.NoDirExists(t, c.dir, "Env.Stop removes the data and certificates the restarts kept")
}

// A user without groups may do what its RBAC binding grants, and nothing
// once the binding is gone: the revocation a rotation ends with.
func TestAddUserAccessFollowsItsBinding(t *testing.T) {
	env := New(t, Options{Clusters: 1})
	ctx := t.Context()
	c := env.Clusters[0]
	kubeconfig, err := c.AddUser("rotated")
	require.NoError(t, err)
	user := clientFrom(t, env, kubeconfig)
	list := func() error { return user.List(ctx, &corev1.ConfigMapList{}, client.InNamespace("default")) }
	assert.True(t, apierrors.IsForbidden(list()), "no binding, no access")

	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "rotated-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "rotated"}},
	}
	require.NoError(t, c.Client.Create(ctx, binding))
	require.Eventually(t, func() bool { return list() == nil }, 10*time.Second, 50*time.Millisecond, "the binding grants access")
	require.NoError(t, c.Client.Delete(ctx, binding))
	require.Eventually(t, func() bool { return apierrors.IsForbidden(list()) }, 10*time.Second, 50*time.Millisecond, "deleting the binding revokes it")
}

func clientFrom(t *testing.T, env *Env, kubeconfig []byte) client.Client {
	t.Helper()
	c, err := NewClient(kubeconfig, env.Scheme)
	require.NoError(t, err)
	return c
}
