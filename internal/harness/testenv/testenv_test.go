package testenv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/names"
)

func TestStart(t *testing.T) {
	began := time.Now()
	env := New(t, Options{})
	t.Logf("supervisor + %d KubeVirt clusters up in %v", len(env.Clusters), time.Since(began).Round(time.Millisecond))
	ctx := t.Context()

	require.Len(t, env.Clusters, 2)
	assert.Equal(t, "kubevirt-1", env.Clusters[0].Name)
	assert.Equal(t, "kubevirt-2", env.Clusters[1].Name)
	assert.Same(t, env.Clusters[1], env.Cluster("kubevirt-2"))
	assert.Nil(t, env.Cluster("kubevirt-3"))

	t.Run("supervisor serves every synced vitistack CRD", func(t *testing.T) {
		want := crdResources(t, filepath.Join(repoRoot(t), "deploy", "crds", "vitistack"))
		require.NotEmpty(t, want)
		assertServed(t, env.Supervisor, want)
		var ns corev1.Namespace
		require.NoError(t, env.Supervisor.Client.Get(ctx, client.ObjectKey{Name: names.Namespace}, &ns))
	})

	t.Run("clusters serve the KubeVirt, CDI and NAD CRDs with status", func(t *testing.T) {
		want := crdResources(t, filepath.Join(repoRoot(t), "test", "crds", "kubevirt"))
		require.Subset(t, want, []string{
			"kubevirt.io/v1/virtualmachines", "kubevirt.io/v1/virtualmachineinstances", "kubevirt.io/v1/kubevirts",
			"cdi.kubevirt.io/v1beta1/datavolumes", "cdi.kubevirt.io/v1beta1/storageprofiles", "cdi.kubevirt.io/v1beta1/datasources",
			"k8s.cni.cncf.io/v1/network-attachment-definitions",
		})
		// As upstream: VMs, DataVolumes and StorageProfiles have a status
		// subresource, VMIs (virt-controller updates them whole) and
		// NetworkAttachmentDefinitions do not.
		withStatus := crdResources(t, filepath.Join(repoRoot(t), "test", "crds", "kubevirt"), statusSubresource)
		assert.Subset(t, withStatus, []string{"kubevirt.io/v1/virtualmachines", "cdi.kubevirt.io/v1beta1/datavolumes", "cdi.kubevirt.io/v1beta1/storageprofiles"})
		assert.NotContains(t, withStatus, "kubevirt.io/v1/virtualmachineinstances")
		for _, c := range env.Clusters {
			assertServed(t, c, want)
			for _, r := range withStatus {
				assertServed(t, c, []string{r + "/status"})
			}
		}
	})

	t.Run("clusters have a default StorageClass and its StorageProfile", func(t *testing.T) {
		for _, c := range env.Clusters {
			var scs storagev1.StorageClassList
			require.NoError(t, c.Client.List(ctx, &scs))
			var defaults []string
			for _, sc := range scs.Items {
				if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
					defaults = append(defaults, sc.Name)
				}
			}
			assert.Equal(t, []string{DefaultStorageClass}, defaults, c.Name)
			var sp cdiv1beta1.StorageProfile
			require.NoError(t, c.Client.Get(ctx, client.ObjectKey{Name: DefaultStorageClass}, &sp))
			require.Len(t, sp.Status.ClaimPropertySets, 1, c.Name)
			assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, sp.Status.ClaimPropertySets[0].AccessModes)
		}
	})

	t.Run("each cluster is registered with its kubeconfig Secret", func(t *testing.T) {
		var kvcs v1alpha1.KubevirtConfigList
		require.NoError(t, env.Supervisor.Client.List(ctx, &kvcs))
		got := map[string]v1alpha1.KubevirtConfigSpec{}
		for _, k := range kvcs.Items {
			got[k.Name] = k.Spec
		}
		for _, c := range env.Clusters {
			spec, ok := got[c.Name]
			require.True(t, ok, "KubevirtConfig %s missing", c.Name)
			assert.Equal(t, v1alpha1.KubevirtConfigSpec{Name: c.Name, SecretNamespace: names.Namespace, KubeconfigSecretRef: c.Name + "-kubeconfig"}, spec)
			var s corev1.Secret
			require.NoError(t, env.Supervisor.Client.Get(ctx, client.ObjectKey{Namespace: spec.SecretNamespace, Name: spec.KubeconfigSecretRef}, &s))
			assert.True(t, bytes.Equal(c.Kubeconfig, s.Data[names.KubeconfigSecretKey]), "Secret of %s holds a different kubeconfig", c.Name)
		}
	})

	t.Run("a Secret's kubeconfig authenticates as a system:masters user and reaches only its cluster", func(t *testing.T) {
		first, second := env.Clusters[0], env.Clusters[1]
		var s corev1.Secret
		require.NoError(t, env.Supervisor.Client.Get(ctx, client.ObjectKey{Namespace: names.Namespace, Name: KubeconfigSecretName(first.Name)}, &s))
		cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[names.KubeconfigSecretKey])
		require.NoError(t, err)
		c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
		require.NoError(t, err)

		review := &authenticationv1.SelfSubjectReview{}
		require.NoError(t, c.Create(ctx, review))
		assert.Equal(t, userName, review.Status.UserInfo.Username)
		assert.Contains(t, review.Status.UserInfo.Groups, "system:masters")

		vm := kubevirtadmission.MinimalVM("default", "harness-vm")
		vm.Spec.RunStrategy = ptrTo(kubevirtv1.RunStrategyAlways)
		require.NoError(t, c.Create(ctx, vm))
		vm.Status.PrintableStatus = kubevirtv1.VirtualMachineStatusStarting
		require.NoError(t, c.Status().Update(ctx, vm))

		var got kubevirtv1.VirtualMachine
		require.NoError(t, first.Client.Get(ctx, client.ObjectKeyFromObject(vm), &got))
		assert.Equal(t, kubevirtv1.RunStrategyAlways, *got.Spec.RunStrategy)
		assert.Equal(t, kubevirtv1.VirtualMachineStatusStarting, got.Status.PrintableStatus)
		err = second.Client.Get(ctx, client.ObjectKeyFromObject(vm), &got)
		assert.True(t, apierrors.IsNotFound(err), "VM leaked to %s: %v", second.Name, err)
	})

	t.Run("KubeVirt's admission judges VMs on every cluster", func(t *testing.T) {
		for _, c := range env.Clusters {
			require.NoError(t, kubevirtadmission.Probe(ctx, c.Client), c.Name)
			// What the issue that brought KubeVirt's admission in found:
			// inline user data over KubeVirt's limit.
			vm := kubevirtadmission.MinimalVM("default", "oversized-cloud-init")
			vm.Spec.Template.Spec.Domain.Devices.Disks = []kubevirtv1.Disk{{Name: "cloudinit"}}
			vm.Spec.Template.Spec.Volumes = []kubevirtv1.Volume{{Name: "cloudinit", VolumeSource: kubevirtv1.VolumeSource{
				CloudInitNoCloud: &kubevirtv1.CloudInitNoCloudSource{UserData: "#cloud-config\n" + strings.Repeat("#", 3000)},
			}}}
			err := c.Client.Create(ctx, vm, client.DryRunAll)
			require.Error(t, err, c.Name)
			assert.Contains(t, err.Error(), "userdata exceeds 2048 byte limit", c.Name)
			var hooks admissionregistrationv1.ValidatingWebhookConfigurationList
			require.NoError(t, c.Client.List(ctx, &hooks))
			require.Len(t, hooks.Items, 1, c.Name)
			for _, h := range hooks.Items[0].Webhooks {
				assert.Equal(t, admissionregistrationv1.Fail, *h.FailurePolicy, "%s: %s", c.Name, h.Name)
			}
		}
	})

	t.Run("RegisterCluster adds a config and replaces its Secret's data", func(t *testing.T) {
		require.NoError(t, env.RegisterCluster(ctx, "black-hole", []byte("not a kubeconfig")))
		require.NoError(t, env.RegisterCluster(ctx, "black-hole", []byte("still not one")))
		var kvc v1alpha1.KubevirtConfig
		require.NoError(t, env.Supervisor.Client.Get(ctx, client.ObjectKey{Name: "black-hole"}, &kvc))
		assert.Equal(t, "black-hole-kubeconfig", kvc.Spec.KubeconfigSecretRef)
		var s corev1.Secret
		require.NoError(t, env.Supervisor.Client.Get(ctx, client.ObjectKey{Namespace: names.Namespace, Name: kvc.Spec.KubeconfigSecretRef}, &s))
		assert.Equal(t, "still not one", string(s.Data[names.KubeconfigSecretKey]))
	})
}

func TestStopLeavesNoProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	env := New(t, Options{Clusters: 1})
	children := childProcesses(t)
	// etcd and kube-apiserver for the supervisor and the one cluster, and
	// the cluster's kubevirt-webhook.
	require.Len(t, children, 5, "child processes: %v", children)
	host := env.Clusters[0].Config.Host

	require.NoError(t, env.Stop())
	require.NoError(t, env.Stop(), "a second Stop is a no-op")
	for _, pid := range children {
		err := syscall.Kill(pid, 0)
		assert.True(t, errors.Is(err, syscall.ESRCH), "process %d still exists after Stop (kill: %v)", pid, err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/")
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("API server %s still accepts connections after Stop", addr)
	}
}

func TestSupervisorOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	env := New(t, Options{SupervisorOnly: true})
	ctx := t.Context()
	assert.Empty(t, env.Clusters)
	children := childProcesses(t)
	require.Len(t, children, 2, "etcd and kube-apiserver of the supervisor only: %v", children)
	assertServed(t, env.Supervisor, crdResources(t, filepath.Join(repoRoot(t), "deploy", "crds", "vitistack")))
	var kvcs v1alpha1.KubevirtConfigList
	require.NoError(t, env.Supervisor.Client.List(ctx, &kvcs))
	assert.Empty(t, kvcs.Items, "no cluster, no KubevirtConfig")

	require.NoError(t, env.RegisterCluster(ctx, ClusterName(1), []byte("objects only")))
	require.NoError(t, env.Supervisor.Client.List(ctx, &kvcs))
	require.Len(t, kvcs.Items, 1)
	assert.Equal(t, KubeconfigSecretName(ClusterName(1)), kvcs.Items[0].Spec.KubeconfigSecretRef)
}

func TestStartRejectsBadClusterCounts(t *testing.T) {
	_, err := Start(context.Background(), Options{Clusters: -1})
	require.ErrorContains(t, err, "Options.Clusters is -1")
	_, err = Start(context.Background(), Options{Clusters: 1, SupervisorOnly: true})
	require.EqualError(t, err, "testenv: Options.SupervisorOnly with Clusters 1: want Clusters 0")
}

func TestRepoRootIsTheMainModule(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "module "+modulePath+"\n")
	got, ok := findModuleRoot(filepath.Join(root, "hack", "tools"))
	assert.True(t, ok)
	assert.Equal(t, root, got, "the tools module must not be taken for the root")
	_, ok = findModuleRoot(os.TempDir())
	assert.False(t, ok)
}

func BenchmarkStart(b *testing.B) {
	if testing.Short() {
		b.Skip("needs real API servers")
	}
	var total time.Duration
	for b.Loop() {
		began := time.Now()
		env, err := Start(b.Context(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(began)
		b.StopTimer()
		if err := env.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-to-ready/op")
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	require.NoError(t, err)
	return root
}

func ptrTo[T any](v T) *T { return &v }

// crdResources returns "group/version/plural" for every served version of
// every CRD in dir.
// statusSubresource keeps the versions that have a status subresource.
func statusSubresource(v apiextensionsv1.CustomResourceDefinitionVersion) bool {
	return v.Subresources != nil && v.Subresources.Status != nil
}

// crdResources lists "group/version/plural" for every served version of
// the CRDs in dir that passes every filter.
func crdResources(t *testing.T, dir string, filters ...func(apiextensionsv1.CustomResourceDefinitionVersion) bool) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var crd apiextensionsv1.CustomResourceDefinition
		require.NoError(t, yaml.Unmarshal(b, &crd), f)
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Served && !slices.ContainsFunc(filters, func(f func(apiextensionsv1.CustomResourceDefinitionVersion) bool) bool { return !f(v) }) {
				out = append(out, crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Plural)
			}
		}
	}
	return out
}

// assertServed checks discovery on c lists each "group/version/resource".
func assertServed(t *testing.T, c *Cluster, resources []string) {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	require.NoError(t, err)
	for _, r := range resources {
		group, rest, _ := strings.Cut(r, "/")
		version, plural, _ := strings.Cut(rest, "/")
		list, err := dc.ServerResourcesForGroupVersion(group + "/" + version)
		require.NoError(t, err, "%s: discovery of %s/%s", c.Name, group, version)
		found := slices.ContainsFunc(list.APIResources, func(a metav1.APIResource) bool { return a.Name == plural })
		assert.True(t, found, "%s does not serve %s", c.Name, r)
	}
}

// childProcesses lists the live child processes of this test binary.
func childProcesses(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces, so cut at the last ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(self) {
			pids = append(pids, pid)
		}
	}
	return pids
}
