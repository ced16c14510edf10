package deploy

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testenv/simulated"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// Names the KubeVirt-cluster RBAC test uses. The worker's identity there is
// a token of the ServiceAccount that deploy/kubevirt-cluster creates, as the
// README has operators make it; asWorker is the KubevirtConfig whose
// kubeconfig holds that token. openNamespace opted in to cloud-init
// Secrets with the README's RoleBinding, closedNamespace did not.
const (
	asWorker        = "kubevirt-as-worker"
	openNamespace   = "rbac-kv-open"
	closedNamespace = "rbac-kv-closed"
	cloudInitRole   = "machineflow-worker-kubevirt-cloudinit"
)

func kubevirtClusterRoot(t testing.TB) root {
	return root{name: "deploy/kubevirt-cluster", dir: filepath.Join(repoRoot(t), "deploy", "kubevirt-cluster")}
}

// TestKubevirtClusterManifests holds deploy/kubevirt-cluster to the rules
// of every RBAC here: bindings resolve to rendered roles and
// ServiceAccounts, no wildcards, no Secrets granted cluster-wide.
func TestKubevirtClusterManifests(t *testing.T) {
	m := render(t, kubevirtClusterRoot(t))
	checkBindings(t, m)
	checkRules(t, m)
	require.NotNil(t, m.find("ServiceAccount", namespace, workerName))
	require.NotNil(t, m.find("ClusterRole", "", cloudInitRole))
	require.Empty(t, m.ofKind("RoleBinding"), "the cloud-init ClusterRole is bound per Machine namespace by the operator")
}

// TestKubevirtClusterRBAC applies deploy/kubevirt-cluster to a KubeVirt
// cluster (with the simulator) and runs the activities of three Machines'
// lifecycles there as the worker's ServiceAccount: every call they make is
// allowed, and every rule of the two ClusterRoles is used by one of them,
// so the roles grant exactly what the worker needs. A Machine with
// cloud-init in a namespace that did not opt in fails with
// ClusterUnauthorized, naming the Secret, and leaves nothing.
func TestKubevirtClusterRBAC(t *testing.T) {
	e := needEnv(t)
	ctx := t.Context()
	kv := e.Cluster(clusterName)
	sup := e.Supervisor.Client
	m := render(t, kubevirtClusterRoot(t))
	for _, obj := range m.objs {
		require.NoError(t, apply(ctx, kv.Client, obj, false))
	}
	for _, ns := range []string{openNamespace, closedNamespace} {
		require.NoError(t, sup.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	// The opt-in of the README: the namespace and the RoleBinding first.
	require.NoError(t, kv.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: openNamespace}}))
	require.NoError(t, kv.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: openNamespace, Name: cloudInitRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cloudInitRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: workerName}},
	}))
	token := workerToken(t, kv)
	require.NoError(t, e.RegisterCluster(ctx, asWorker, tokenKubeconfig(t, kv.Config, token)))
	simulated.Start(t, e, kubevirtsim.Options{
		AddressPool: "10.102.0.0/16", BootDelay: 100 * time.Millisecond, TerminationDelay: 50 * time.Millisecond, PollInterval: 50 * time.Millisecond,
	})

	calls := &callLog{}
	recording := &recordingClients{ClientManager: clients.NewKubevirtClientManager(sup, e.Scheme, e.ConfigNamespace), log: calls}
	w := &worker{t: t, ctx: ctx, sup: sup}
	acts := w.activities(recording, activities.DefaultSettings())
	named := activities.DefaultSettings()
	named.StorageClassName = testenv.DefaultStorageClass
	namedClass := w.activities(recording, named)

	// A: a VLAN network, an ISO boot and cloud-init, from placement to
	// deprovisioning, with the ISO cleaned up on the way.
	vlan := &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: openNamespace, Name: "vlan"},
		Spec: v1alpha1.NetworkNamespaceSpec{DatacenterIdentifier: "dc1", SupervisorIdentifier: "sup",
			IPAllocation: &v1alpha1.NetworkNamespaceIPAllocation{Type: v1alpha1.IPAllocationTypeDHCP}}}
	require.NoError(t, sup.Create(ctx, vlan))
	vlan.Status.VlanID = 30
	require.NoError(t, sup.Status().Update(ctx, vlan))
	a := w.machine(openNamespace, "vm-a", func(m *v1alpha1.Machine) {
		m.Annotations[names.BootSourceAnnotation] = names.BootSourceDataVolume
		m.Spec.OS.ImageID = "http://127.0.0.1:1/os.iso" // unreachable: sized by DEFAULT_ISO_SIZE
		m.Spec.Network.NetworkNamespaceName = "vlan"
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\n", NetworkData: "version: 1\nconfig: []\n"}
	})
	w.must(acts, nil, acts.ResolvePlacement, contract.PlacementInput{Machine: a.Machine, KubevirtConfig: asWorker})
	w.must(acts, nil, acts.ValidateCluster, contract.ClusterRef{KubevirtConfig: asWorker})
	w.provision(acts, a)
	require.NotNil(t, cloudInitSecretOf(t, kv, a.Machine), "A's cloud-init Secret was created")
	w.must(acts, nil, acts.WaitForVirtualMachine, a)
	// No CDI here: the ISO DataVolume KubeVirt would make from the template.
	dv := &unstructured.Unstructured{}
	dv.SetAPIVersion("cdi.kubevirt.io/v1beta1")
	dv.SetKind("DataVolume")
	dv.SetNamespace(openNamespace)
	dv.SetName(vmplan.ISOName("vm-a"))
	dv.SetLabels(names.ManagedLabels("vm-a"))
	require.NoError(t, unstructured.SetNestedField(dv.Object, map[string]any{"blank": map[string]any{}}, "spec", "source"))
	require.NoError(t, unstructured.SetNestedField(dv.Object, map[string]any{"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}, "spec", "storage"))
	require.NoError(t, kv.Client.Create(ctx, dv))
	w.annotate(a.Machine, names.CDROMEjectedAnnotation, "true")
	w.must(acts, nil, acts.CleanupISO, a)
	w.deprovision(acts, a)

	// B: the pod network, the StorageClass named by STORAGE_CLASS_NAME, and
	// the cloud-init Secret an earlier attempt left with older content.
	b := w.machine(openNamespace, "vm-b", func(m *v1alpha1.Machine) {
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\nhostname: vm-b\n"}
	})
	require.NoError(t, kv.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: openNamespace, Name: vmplan.CloudInitSecretName("vm-b"), Labels: names.ManagedLabels("vm-b")},
		Data:       map[string][]byte{vmplan.CloudInitUserDataKey: []byte("#cloud-config\nhostname: old\n")},
	}))
	w.provision(namedClass, b)
	require.Equal(t, "#cloud-config\nhostname: vm-b\n", string(cloudInitSecretOf(t, kv, b.Machine).Data[vmplan.CloudInitUserDataKey]), "B's Secret was updated")
	w.deprovision(acts, b)

	// C: cloud-init in a namespace that did not opt in, which the worker
	// creates on the cluster.
	c := w.machine(closedNamespace, "vm-c", func(m *v1alpha1.Machine) {
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: "#cloud-config\n"}
	})
	err := w.run(acts, nil, acts.EnsureVirtualMachine, w.prepare(acts, c))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, contract.ErrTypeUnauthorized, appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Contains(t, appErr.Message(), "get Secret "+closedNamespace+"/vm-c-cloudinit on "+asWorker)
	var del contract.DeleteResult
	w.must(acts, &del, acts.DeleteVirtualMachine, c)
	assert.Empty(t, del.Deleted, "no VM, and no Secret the worker could have written")
	w.deprovision(acts, c) // what compensation deletes: the rest

	for _, rm := range []contract.RemoteMachine{a, b, c} {
		left, err := kv.MachineLeftovers(ctx, rm.Machine.Namespace, rm.Machine.Name)
		require.NoError(t, err)
		assert.Empty(t, left, "nothing of %s is left", rm.Machine.Name)
	}

	var granted []string
	for _, o := range m.ofKind("ClusterRole") {
		for _, r := range rulesOf(t, o) {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						granted = append(granted, call(g, res, v))
					}
				}
			}
		}
	}
	slices.Sort(granted)
	assert.Equal(t, granted, calls.sorted(), "the ClusterRoles grant exactly the calls the activities made")

	sa := serviceAccountClient(t, e, kv, token)
	check(t, sa, nil, []operation{
		{"list Secrets in a namespace that opted in", func(ctx context.Context, c client.WithWatch) error {
			return c.List(ctx, &corev1.SecretList{}, client.InNamespace(openNamespace))
		}},
		{"get a Secret in kube-system", get(client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: "any"}, &corev1.Secret{})},
		{"create a Secret in a namespace that did not opt in", func(ctx context.Context, c client.WithWatch) error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: closedNamespace, Name: "planted"}})
		}},
		{"update a VirtualMachine", func(ctx context.Context, c client.WithWatch) error {
			return c.Update(ctx, &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: openNamespace, Name: "vm-a"}})
		}},
		{"delete a namespace", func(ctx context.Context, c client.WithWatch) error {
			return c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: closedNamespace}})
		}},
	})
}

// worker runs activities as the worker would, each in a test activity
// environment of its own.
type worker struct {
	t   *testing.T
	ctx context.Context
	sup client.Client
}

func (w *worker) activities(cm clients.ClientManager, settings activities.Settings) *activities.Activities {
	settings.PollInitial, settings.PollMax = 20*time.Millisecond, 100*time.Millisecond
	acts, err := activities.New(activities.Deps{Clients: cm, Supervisor: w.sup, Settings: settings})
	require.NoError(w.t, err)
	return acts
}

// run executes the activity fn, a method of acts.
func (w *worker) run(acts *activities.Activities, out any, fn any, args ...any) error {
	w.t.Helper()
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	val, err := env.ExecuteActivity(fn, args...)
	if err == nil && out != nil {
		require.NoError(w.t, val.Get(out))
	}
	return err
}

func (w *worker) must(acts *activities.Activities, out any, fn any, args ...any) {
	w.t.Helper()
	require.NoError(w.t, w.run(acts, out, fn, args...))
}

// machine creates a Machine with one boot disk on the supervisor.
func (w *worker) machine(ns, name string, mutate func(*v1alpha1.Machine)) contract.RemoteMachine {
	w.t.Helper()
	m := &v1alpha1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}},
		Spec:       v1alpha1.MachineSpec{Provider: names.ProviderKubevirt, Disks: []v1alpha1.MachineSpecDisk{{SizeGB: 1, Boot: true}}},
	}
	mutate(m)
	require.NoError(w.t, w.sup.Create(w.ctx, m))
	return contract.RemoteMachine{KubevirtConfig: asWorker, Machine: contract.MachineRef{Namespace: ns, Name: name}}
}

func (w *worker) annotate(ref contract.MachineRef, key, value string) {
	w.t.Helper()
	m := &v1alpha1.Machine{}
	require.NoError(w.t, w.sup.Get(w.ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, m))
	patch := client.MergeFrom(m.DeepCopy())
	m.Annotations[key] = value
	require.NoError(w.t, w.sup.Patch(w.ctx, m, patch))
}

// prepare runs the activities of ProvisionMachine before
// EnsureVirtualMachine and returns its input.
func (w *worker) prepare(acts *activities.Activities, rm contract.RemoteMachine) contract.VirtualMachineInput {
	w.t.Helper()
	var plan contract.MachinePlan
	w.must(acts, &plan, acts.LoadMachine, rm.Machine)
	w.must(acts, nil, acts.EnsureNamespace, rm)
	w.must(acts, nil, acts.EnsureVolumes, contract.VolumesInput{KubevirtConfig: rm.KubevirtConfig, Machine: rm.Machine, Disks: plan.Disks})
	var net contract.NetworkResult
	w.must(acts, &net, acts.EnsureNetwork, contract.NetworkInput{KubevirtConfig: rm.KubevirtConfig, Machine: rm.Machine, Network: plan.Network})
	return contract.VirtualMachineInput{KubevirtConfig: rm.KubevirtConfig, Plan: plan, Network: net}
}

// provision is prepare, then EnsureVirtualMachine.
func (w *worker) provision(acts *activities.Activities, rm contract.RemoteMachine) {
	w.t.Helper()
	w.must(acts, nil, acts.EnsureVirtualMachine, w.prepare(acts, rm))
}

// deprovision runs the remote deletes of DeprovisionMachine, in its order.
func (w *worker) deprovision(acts *activities.Activities, rm contract.RemoteMachine) {
	w.t.Helper()
	w.must(acts, nil, acts.DeleteVirtualMachine, rm)
	w.must(acts, nil, acts.DeleteVolumes, contract.DeleteVolumesInput{RemoteMachine: rm})
	w.must(acts, nil, acts.DeleteNetwork, rm)
}

func cloudInitSecretOf(t *testing.T, kv *testenv.Cluster, ref contract.MachineRef) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	require.NoError(t, kv.Client.Get(t.Context(), client.ObjectKey{Namespace: ref.Namespace, Name: vmplan.CloudInitSecretName(ref.Name)}, s))
	return s
}

// workerToken is a token of the worker's ServiceAccount on kv, as
// `kubectl create token` makes it.
func workerToken(t *testing.T, kv *testenv.Cluster) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: workerName}}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}
	require.NoError(t, kv.Client.SubResource("token").Create(t.Context(), sa, req))
	require.NotEmpty(t, req.Status.Token)
	return req.Status.Token
}

// tokenKubeconfig is a kubeconfig for cfg's server with a bearer token.
func tokenKubeconfig(t *testing.T, cfg *rest.Config, token string) []byte {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubevirt"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["worker"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["worker"] = &clientcmdapi.Context{Cluster: "kubevirt", AuthInfo: "worker"}
	kc.CurrentContext = "worker"
	b, err := clientcmd.Write(*kc)
	require.NoError(t, err)
	return b
}

func serviceAccountClient(t *testing.T, e *testenv.Env, kv *testenv.Cluster, token string) client.WithWatch {
	t.Helper()
	cfg := &rest.Config{Host: kv.Config.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: kv.Config.CAData}}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: e.Scheme})
	require.NoError(t, err)
	return c
}

// callLog records the calls made through recordingClient as
// "<group>/<resource> <verb>".
type callLog struct {
	mu    sync.Mutex
	calls map[string]bool
}

func call(group, resource, verb string) string { return group + "/" + resource + " " + verb }

func (l *callLog) note(c client.Client, obj runtime.Object, verb string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = map[string]bool{}
	}
	gvk, err := c.GroupVersionKindFor(obj)
	if err != nil {
		l.calls[fmt.Sprintf("%T %s (%v)", obj, verb, err)] = true
		return
	}
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		l.calls[fmt.Sprintf("%s %s (%v)", gvk, verb, err)] = true
		return
	}
	l.calls[call(mapping.Resource.Group, mapping.Resource.Resource, verb)] = true
}

func (l *callLog) sorted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.calls))
	for c := range l.calls {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// recordingClients hands out the KubeVirt clusters' clients with every
// call recorded.
type recordingClients struct {
	clients.ClientManager
	log *callLog
}

func (r *recordingClients) GetClientForConfig(ctx context.Context, name string) (client.Client, error) {
	c, err := r.ClientManager.GetClientForConfig(ctx, name)
	if err != nil {
		return nil, err
	}
	return recordingClient{Client: c, log: r.log}, nil
}

// recordingClient records each call before making it. Subresources and
// server-side apply are recorded as calls no rule grants, so that an
// activity starting to use them fails the test until it learns them.
type recordingClient struct {
	client.Client
	log *callLog
}

func (c recordingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.log.note(c.Client, obj, "get")
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c recordingClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.log.note(c.Client, list, "list")
	return c.Client.List(ctx, list, opts...)
}

func (c recordingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.log.note(c.Client, obj, "create")
	return c.Client.Create(ctx, obj, opts...)
}

func (c recordingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.log.note(c.Client, obj, "update")
	return c.Client.Update(ctx, obj, opts...)
}

func (c recordingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.log.note(c.Client, obj, "patch")
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c recordingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.log.note(c.Client, obj, "delete")
	return c.Client.Delete(ctx, obj, opts...)
}

func (c recordingClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	c.log.note(c.Client, obj, "deletecollection")
	return c.Client.DeleteAllOf(ctx, obj, opts...)
}

func (c recordingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.log.mark("server-side apply")
	return c.Client.Apply(ctx, obj, opts...)
}

func (c recordingClient) Status() client.SubResourceWriter {
	c.log.mark("subresource status")
	return c.Client.Status()
}

func (c recordingClient) SubResource(name string) client.SubResourceClient {
	c.log.mark("subresource " + name)
	return c.Client.SubResource(name)
}

func (l *callLog) mark(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = map[string]bool{}
	}
	l.calls[what+" (not recorded by resource and verb)"] = true
}
