package deploy

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/names"
)

// Objects the RBAC test works on. tenantNamespace holds Machines and has
// not opted in to cloud-init reads; "default" has, through the all-in-one
// overlay's RoleBinding.
const (
	tenantNamespace = "rbac-tenant"
	optedNamespace  = "default"
	machineName     = "vm-rbac"
	cloudInitName   = "vm-rbac-cloud-init"
	foreignSecret   = "not-for-machineflow"
	otherLease      = "someone-else"
	vitistackName   = "rbac-stack"
)

// operation is one API call made as a ServiceAccount.
type operation struct {
	name string
	do   func(ctx context.Context, c client.WithWatch) error
}

// TestRBAC applies the RBAC of the all-in-one overlay (the base's plus the
// cloud-init opt-in of namespace default) for real, then acts as each
// ServiceAccount: what it needs succeeds, the rest is Forbidden.
func TestRBAC(t *testing.T) {
	e := needEnv(t)
	ctx := t.Context()
	admin, _ := adminClient(t, e)
	m := render(t, root{name: "deploy/overlays/all-in-one", dir: filepath.Join(repoRoot(t), "deploy", "overlays", "all-in-one")})
	for _, obj := range m.objs {
		if slices.Contains([]string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}, obj.GetKind()) {
			require.NoError(t, apply(ctx, admin, obj, false))
		}
	}
	kubeconfigSecret := client.ObjectKey{Namespace: e.ConfigNamespace, Name: testenv.KubeconfigSecretName(clusterName)}
	require.NoError(t, admin.Get(ctx, kubeconfigSecret, &corev1.Secret{}), "needEnv registers the cluster's kubeconfig Secret")
	createFixtures(t, admin)
	machine := client.ObjectKey{Namespace: tenantNamespace, Name: machineName}
	leaseName := flagValue(m.deployment(t, controllerName).Spec.Template.Spec.Containers[0].Args, "--leader-election-id")
	require.NotEmpty(t, leaseName)

	// Both read Machines the way a controller-runtime client does.
	machineReads := []operation{
		{"get a Machine", get(machine, &v1alpha1.Machine{})},
		{"list Machines in every namespace", func(ctx context.Context, c client.WithWatch) error {
			return c.List(ctx, &v1alpha1.MachineList{})
		}},
		{"watch Machines", watch(&v1alpha1.MachineList{})},
	}

	t.Run("worker", func(t *testing.T) {
		c := impersonate(t, e, workerName)
		allowed := slices.Concat(machineReads, []operation{
			{"patch a Machine's placement annotation", patchMachine(machine, func(m *v1alpha1.Machine) {
				metav1.SetMetaDataAnnotation(&m.ObjectMeta, names.PlacementAnnotation, clusterName)
			})},
			{"update a Machine's status", func(ctx context.Context, c client.WithWatch) error {
				var m v1alpha1.Machine
				if err := c.Get(ctx, machine, &m); err != nil {
					return err
				}
				m.Status.Phase = "Pending"
				return c.Status().Update(ctx, &m)
			}},
			{"patch a Machine's status", patchMachineStatus(machine)},
			{"list KubevirtConfigs", func(ctx context.Context, c client.WithWatch) error {
				return c.List(ctx, &v1alpha1.KubevirtConfigList{})
			}},
			{"update a KubevirtConfig's status", func(ctx context.Context, c client.WithWatch) error {
				var kvc v1alpha1.KubevirtConfig
				if err := c.Get(ctx, client.ObjectKey{Name: clusterName}, &kvc); err != nil {
					return err
				}
				kvc.Status.Message = "checked by the RBAC test"
				return c.Status().Update(ctx, &kvc)
			}},
			{"list MachineClasses", func(ctx context.Context, c client.WithWatch) error {
				return c.List(ctx, &v1alpha1.MachineClassList{})
			}},
			{"list NetworkNamespaces in a Machine's namespace", func(ctx context.Context, c client.WithWatch) error {
				return c.List(ctx, &v1alpha1.NetworkNamespaceList{}, client.InNamespace(tenantNamespace))
			}},
			{"create, patch and delete a NetworkConfiguration", func(ctx context.Context, c client.WithWatch) error {
				nc := &v1alpha1.NetworkConfiguration{
					ObjectMeta: metav1.ObjectMeta{Name: machineName, Namespace: tenantNamespace},
					Spec:       v1alpha1.NetworkConfigurationSpec{Name: machineName},
				}
				if err := c.Create(ctx, nc); err != nil {
					return err
				}
				base := nc.DeepCopy()
				nc.Labels = names.ManagedLabels(machineName)
				if err := c.Patch(ctx, nc, client.MergeFrom(base)); err != nil {
					return err
				}
				return c.Delete(ctx, nc)
			}},
			{"get a kubeconfig Secret in the config namespace", get(kubeconfigSecret, &corev1.Secret{})},
			{"get a cloud-init Secret in a namespace that opted in", get(client.ObjectKey{Namespace: optedNamespace, Name: cloudInitName}, &corev1.Secret{})},
			{"get a cloud-init ConfigMap in a namespace that opted in", get(client.ObjectKey{Namespace: optedNamespace, Name: cloudInitName}, &corev1.ConfigMap{})},
			{"create an Event about a Machine", createEvent(machine)},
			{"get a Vitistack", get(client.ObjectKey{Name: vitistackName}, &v1alpha1.Vitistack{})},
			{"list MachineProviders", func(ctx context.Context, c client.WithWatch) error {
				return c.List(ctx, &v1alpha1.MachineProviderList{})
			}},
			{"create and get its MachineProvider", func(ctx context.Context, c client.WithWatch) error {
				mp := newMachineProvider(clusterName)
				if err := c.Create(ctx, mp); err != nil {
					return err
				}
				return c.Get(ctx, client.ObjectKeyFromObject(mp), mp)
			}},
		})
		forbidden := []operation{
			{"update a MachineProvider", func(ctx context.Context, c client.WithWatch) error {
				mp := newMachineProvider(clusterName)
				mp.Spec.Region = "moved"
				return c.Update(ctx, mp)
			}},
			{"delete a MachineProvider", func(ctx context.Context, c client.WithWatch) error {
				return c.Delete(ctx, newMachineProvider(clusterName))
			}},
			{"update a Vitistack", func(ctx context.Context, c client.WithWatch) error {
				var vs v1alpha1.Vitistack
				if err := c.Get(ctx, client.ObjectKey{Name: vitistackName}, &vs); err != nil {
					return err
				}
				vs.Spec.MachineProviders = append(vs.Spec.MachineProviders, v1alpha1.VitistackProviderReference{Name: "planted"})
				return c.Update(ctx, &vs)
			}},
			{"list Secrets in the config namespace", func(ctx context.Context, c client.WithWatch) error {
				return c.List(ctx, &corev1.SecretList{}, client.InNamespace(e.ConfigNamespace))
			}},
			{"create a Secret in the config namespace", func(ctx context.Context, c client.WithWatch) error {
				return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: e.ConfigNamespace}})
			}},
			{"get a Secret in kube-system", get(client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: foreignSecret}, &corev1.Secret{})},
			{"get a Secret in a namespace that did not opt in", get(client.ObjectKey{Namespace: tenantNamespace, Name: cloudInitName}, &corev1.Secret{})},
			{"get a ConfigMap in a namespace that did not opt in", get(client.ObjectKey{Namespace: tenantNamespace, Name: cloudInitName}, &corev1.ConfigMap{})},
			{"list Secrets in a namespace that opted in", func(ctx context.Context, c client.WithWatch) error {
				return c.List(ctx, &corev1.SecretList{}, client.InNamespace(optedNamespace))
			}},
			{"create a Machine", func(ctx context.Context, c client.WithWatch) error {
				return c.Create(ctx, newMachine("planted"))
			}},
			{"delete a Machine", func(ctx context.Context, c client.WithWatch) error {
				return c.Delete(ctx, &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Name: machine.Name, Namespace: machine.Namespace}})
			}},
			{"update a KubevirtConfig's spec", func(ctx context.Context, c client.WithWatch) error {
				var kvc v1alpha1.KubevirtConfig
				if err := c.Get(ctx, client.ObjectKey{Name: clusterName}, &kvc); err != nil {
					return err
				}
				kvc.Spec.KubeconfigSecretRef = foreignSecret
				return c.Update(ctx, &kvc)
			}},
		}
		check(t, c, allowed, forbidden)
	})

	t.Run("controller", func(t *testing.T) {
		c := impersonate(t, e, controllerName)
		allowed := slices.Concat(machineReads, []operation{
			{"update a Machine's finalizers", func(ctx context.Context, c client.WithWatch) error {
				var m v1alpha1.Machine
				if err := c.Get(ctx, machine, &m); err != nil {
					return err
				}
				m.Finalizers = append(m.Finalizers, names.Finalizer)
				return c.Update(ctx, &m)
			}},
			{"patch a Machine", patchMachine(machine, func(m *v1alpha1.Machine) {
				m.Finalizers = slices.DeleteFunc(m.Finalizers, func(f string) bool { return f == names.Finalizer })
			})},
			{"patch a Machine's status", patchMachineStatus(machine)},
			{"create an Event about a Machine", createEvent(machine)},
			{"create an events.k8s.io Event about a Machine", func(ctx context.Context, c client.WithWatch) error {
				return c.Create(ctx, &eventsv1.Event{
					ObjectMeta:          metav1.ObjectMeta{GenerateName: machine.Name + "-", Namespace: machine.Namespace},
					EventTime:           metav1.NowMicro(),
					ReportingController: "machineflow.io/controller",
					ReportingInstance:   "controller-0",
					Action:              "Reconcile",
					Reason:              "RBACTest",
					Type:                corev1.EventTypeNormal,
					Regarding: corev1.ObjectReference{
						APIVersion: v1alpha1.GroupVersion.String(), Kind: "Machine",
						Namespace: machine.Namespace, Name: machine.Name,
					},
				})
			}},
			{"create, get and update its leader-election Lease", func(ctx context.Context, c client.WithWatch) error {
				lease := &coordinationv1.Lease{
					ObjectMeta: metav1.ObjectMeta{Name: leaseName, Namespace: namespace},
					Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("controller-0")},
				}
				if err := c.Create(ctx, lease); err != nil {
					return err
				}
				if err := c.Get(ctx, client.ObjectKeyFromObject(lease), lease); err != nil {
					return err
				}
				lease.Spec.HolderIdentity = ptr.To("controller-1")
				return c.Update(ctx, lease)
			}},
		})
		forbidden := []operation{
			{"get a kubeconfig Secret in the config namespace", get(kubeconfigSecret, &corev1.Secret{})},
			{"get a Secret in kube-system", get(client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: foreignSecret}, &corev1.Secret{})},
			{"list Secrets in every namespace", func(ctx context.Context, c client.WithWatch) error {
				return c.List(ctx, &corev1.SecretList{})
			}},
			{"create a NetworkConfiguration", func(ctx context.Context, c client.WithWatch) error {
				return c.Create(ctx, &v1alpha1.NetworkConfiguration{
					ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: tenantNamespace},
					Spec:       v1alpha1.NetworkConfigurationSpec{Name: "planted"},
				})
			}},
			{"delete a Machine", func(ctx context.Context, c client.WithWatch) error {
				return c.Delete(ctx, &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Name: machine.Name, Namespace: machine.Namespace}})
			}},
			{"create a Lease outside its namespace", func(ctx context.Context, c client.WithWatch) error {
				return c.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: leaseName, Namespace: tenantNamespace}})
			}},
			{"get another Lease in its namespace", get(client.ObjectKey{Namespace: namespace, Name: otherLease}, &coordinationv1.Lease{})},
			{"update another Lease in its namespace", func(ctx context.Context, c client.WithWatch) error {
				return c.Update(ctx, &coordinationv1.Lease{
					ObjectMeta: metav1.ObjectMeta{Name: otherLease, Namespace: namespace},
					Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("controller-0")},
				})
			}},
		}
		check(t, c, allowed, forbidden)
	})
}

// check runs every operation: allowed ones must succeed, forbidden ones
// must fail with Forbidden (not with NotFound or Invalid, which would say
// nothing about RBAC).
func check(t *testing.T, c client.WithWatch, allowed, forbidden []operation) {
	t.Helper()
	for _, op := range allowed {
		assert.NoError(t, op.do(t.Context(), c), "should be allowed: %s", op.name)
	}
	for _, op := range forbidden {
		err := op.do(t.Context(), c)
		assert.True(t, apierrors.IsForbidden(err), "should be Forbidden: %s; got %v", op.name, err)
	}
}

// impersonate returns a client acting as a machineflow ServiceAccount, as
// its pods would: the admin may impersonate, and the API server adds the
// ServiceAccount groups.
func impersonate(t *testing.T, e *testenv.Env, serviceAccount string) client.WithWatch {
	t.Helper()
	cfg := rest.CopyConfig(e.Supervisor.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + serviceAccount}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: e.Scheme})
	require.NoError(t, err)
	return c
}

func createFixtures(t *testing.T, admin client.Client) {
	t.Helper()
	ctx := t.Context()
	payload := map[string]string{"userdata": "#cloud-config\n"}
	fixtures := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantNamespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: foreignSecret, Namespace: metav1.NamespaceSystem}, StringData: map[string]string{"token": "x"}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: otherLease, Namespace: namespace}},
		newMachine(machineName),
		&v1alpha1.Vitistack{ObjectMeta: metav1.ObjectMeta{Name: vitistackName},
			Spec: v1alpha1.VitistackSpec{DisplayName: vitistackName, Region: "west", Zone: "az1", Infrastructure: "test"}},
	}
	for _, ns := range []string{tenantNamespace, optedNamespace} {
		fixtures = append(fixtures,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: cloudInitName, Namespace: ns}, StringData: payload},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cloudInitName, Namespace: ns}, Data: payload},
		)
	}
	for _, obj := range fixtures {
		require.NoError(t, admin.Create(ctx, obj), "creating %T %s", obj, obj.GetName())
	}
}

func newMachine(name string) *v1alpha1.Machine {
	return &v1alpha1.Machine{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNamespace},
		Spec:       v1alpha1.MachineSpec{Provider: names.ProviderKubevirt},
	}
}

// newMachineProvider is the MachineProvider the worker registers from a
// KubevirtConfig, with the fields its CRD requires.
func newMachineProvider(name string) *v1alpha1.MachineProvider {
	return &v1alpha1.MachineProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.MachineProviderSpec{ProviderType: "kubevirt", DisplayName: name, Region: "west",
			Authentication: v1alpha1.ProviderAuthentication{Type: "credentials"}},
	}
}

func get(key client.ObjectKey, obj client.Object) func(context.Context, client.WithWatch) error {
	return func(ctx context.Context, c client.WithWatch) error { return c.Get(ctx, key, obj) }
}

func watch(list client.ObjectList) func(context.Context, client.WithWatch) error {
	return func(ctx context.Context, c client.WithWatch) error {
		w, err := c.Watch(ctx, list)
		if err != nil {
			return err
		}
		w.Stop()
		return nil
	}
}

func patchMachine(key client.ObjectKey, edit func(*v1alpha1.Machine)) func(context.Context, client.WithWatch) error {
	return func(ctx context.Context, c client.WithWatch) error {
		var m v1alpha1.Machine
		if err := c.Get(ctx, key, &m); err != nil {
			return err
		}
		base := m.DeepCopy()
		edit(&m)
		return c.Patch(ctx, &m, client.MergeFrom(base))
	}
}

func patchMachineStatus(key client.ObjectKey) func(context.Context, client.WithWatch) error {
	return func(ctx context.Context, c client.WithWatch) error {
		var m v1alpha1.Machine
		if err := c.Get(ctx, key, &m); err != nil {
			return err
		}
		base := m.DeepCopy()
		m.Status.Message = "patched by the RBAC test"
		return c.Status().Patch(ctx, &m, client.MergeFrom(base))
	}
}

func createEvent(machine client.ObjectKey) func(context.Context, client.WithWatch) error {
	return func(ctx context.Context, c client.WithWatch) error {
		now := metav1.Now()
		return c.Create(ctx, &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: machine.Name + ".", Namespace: machine.Namespace},
			InvolvedObject: corev1.ObjectReference{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "Machine",
				Namespace: machine.Namespace, Name: machine.Name,
			},
			Reason: "RBACTest", Message: "created by the RBAC test", Type: corev1.EventTypeNormal,
			Source:         corev1.EventSource{Component: "machineflow"},
			FirstTimestamp: now, LastTimestamp: now, Count: 1,
		})
	}
}
