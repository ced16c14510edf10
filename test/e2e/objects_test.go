package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/secretscan"
	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/workflows"
)

// namespace creates a supervisor namespace for one test: tests do not see
// each other's Machines.
func (st *suite) namespace(t *testing.T, name string) string {
	t.Helper()
	require.NoError(t, st.Namespace(t.Context(), name))
	return name
}

// machine creates a Machine of the stack's class with a 5 GB boot disk;
// config, when set, is its placement annotation. mutate changes the rest
// before it is created.
func (st *suite) machine(t *testing.T, ns, name, config string, annotations map[string]string, mutate ...func(*v1alpha1.Machine)) {
	t.Helper()
	m := stack.NewMachine(ns, name)
	for k, v := range annotations {
		m.Annotations[k] = v
	}
	if config != "" {
		m.Annotations[names.PlacementAnnotation] = config
	}
	for _, f := range mutate {
		f(m)
	}
	require.NoError(t, st.Env.Supervisor.Client.Create(t.Context(), m))
}

// cloudInit is user data with a password, longer than the 2048 bytes
// KubeVirt allows inline: only a Secret carries it to the VM.
type cloudInit struct {
	password string
	userData string
}

func newCloudInit(password string) cloudInit {
	userData := "#cloud-config\nchpasswd:\n  list: |\n    root:" + password + "\n" + strings.Repeat("# padding past the inline limit\n", 100)
	return cloudInit{password: password, userData: userData}
}

func (ci cloudInit) apply(m *v1alpha1.Machine) {
	m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: ci.userData}
}

// checkCloudInit checks that the Machine's VM on config reads its user
// data from the Secret <vm>-cloudinit there, which holds it, and that
// neither the VM nor the provision's history carries the password.
func (st *suite) checkCloudInit(t *testing.T, config, ns, name string, ci cloudInit) {
	t.Helper()
	secret := &corev1.Secret{}
	require.NoError(t, st.Env.Cluster(config).Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name + "-cloudinit"}, secret))
	assert.Equal(t, ci.userData, string(secret.Data["userdata"]))
	assert.Equal(t, names.ManagedLabels(name), secret.Labels)
	vm := st.vm(t, config, ns, name)
	require.NotNil(t, vm)
	raw, err := json.Marshal(vm)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), ci.password, "the VM spec carries the password")
	var refs []string
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.CloudInitNoCloud != nil && v.CloudInitNoCloud.UserDataSecretRef != nil {
			refs = append(refs, v.CloudInitNoCloud.UserDataSecretRef.Name)
		}
	}
	assert.Equal(t, []string{secret.Name}, refs)
	st.requireNotInHistory(t, workflows.ProvisionWorkflowID(ns, name), "cloud-init password of "+name, ci.password)
}

// requireNotInHistory fails if secret appears in the history of the
// latest run of workflow id.
func (st *suite) requireNotInHistory(t *testing.T, id, what, secret string) {
	t.Helper()
	h := &historypb.History{}
	it := st.Temporal().GetWorkflowHistory(t.Context(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	require.NotEmpty(t, h.Events, "history of %s", id)
	set := &secretscan.Set{}
	set.Add(what, []byte(secret))
	found, err := set.ScanHistory("history of "+id, h)
	require.NoError(t, err)
	assert.Empty(t, found)
}

func (st *suite) getMachine(t *testing.T, ns, name string) *v1alpha1.Machine {
	t.Helper()
	m := &v1alpha1.Machine{}
	require.NoError(t, st.Env.Supervisor.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, m))
	return m
}

// remains lists what is left of a Machine on every KubeVirt cluster.
func (st *suite) remains(t *testing.T, ns, name string) []string {
	t.Helper()
	left, err := st.Leftovers(t.Context(), ns, name)
	require.NoError(t, err)
	return left
}

// vm returns the Machine's VM on the named cluster, or nil.
func (st *suite) vm(t *testing.T, config, ns, name string) *kubevirtv1.VirtualMachine {
	t.Helper()
	cl := st.Env.Cluster(config)
	require.NotNil(t, cl, "cluster %s", config)
	vm := &kubevirtv1.VirtualMachine{}
	err := cl.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, vm)
	if err != nil {
		require.True(t, client.IgnoreNotFound(err) == nil, "get VM %s/%s on %s: %v", ns, name, config, err)
		return nil
	}
	return vm
}
