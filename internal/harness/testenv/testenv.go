package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
)

const (
	// SupervisorName is the Cluster.Name of the supervisor.
	SupervisorName = "supervisor"
	// DefaultStorageClass is the default StorageClass on every KubeVirt
	// cluster; a CDI StorageProfile of the same name describes it.
	DefaultStorageClass = "standard"
	// userName is the envtest user whose kubeconfig machineflow gets.
	userName = "machineflow"
	// startTimeout bounds each etcd and kube-apiserver start; several start
	// at once on a small machine, so envtest's 20 s default is too tight.
	startTimeout = 90 * time.Second
)

// Options configures Start.
type Options struct {
	// Clusters is the number of KubeVirt clusters; 0 means 2.
	Clusters int
	// SupervisorOnly starts the supervisor alone, for suites that never
	// talk to a KubeVirt cluster: no KubeVirt API server is started and no
	// KubevirtConfig is registered (RegisterCluster adds one when a test
	// needs the objects only). Clusters must then be 0.
	SupervisorOnly bool
	// DataDir, when set, keeps each API server's etcd data in
	// DataDir/<cluster name> after Stop, and a later Start on the same
	// directory serves the objects it left: Machines, VMs, KubevirtConfigs.
	// Ports and certificates are new on every Start; RegisterCluster
	// rewrites the kubeconfig Secrets accordingly. Empty means a temporary
	// directory per server, removed on Stop.
	DataDir string
}

// Env is a running supervisor plus KubeVirt clusters.
type Env struct {
	Supervisor      *Cluster
	Clusters        []*Cluster
	ConfigNamespace string
	Scheme          *runtime.Scheme

	stopOnce sync.Once
	stopErr  error
}

// Cluster is one API server.
type Cluster struct {
	// Name is the KubevirtConfig name ("kubevirt-1", ...), or SupervisorName.
	Name string
	// Config and Client act as the harness's own admin.
	Config *rest.Config
	Client client.Client
	// Kubeconfig authenticates a separate system:masters user; it is what
	// the supervisor's Secret holds. It contains a client key: never log it.
	Kubeconfig []byte
	// VirtController acts as virt-controller's service account, on
	// KubeVirt clusters only: KubeVirt's admission keeps a VMI's status
	// as it was unless one of KubeVirt's own components writes it, so the
	// simulator uses this client.
	VirtController client.Client

	env *envtest.Environment
	// admission is KubeVirt's admission webhook server, on KubeVirt
	// clusters only.
	admission *kubevirtadmission.Server
	// dir holds the API server's certificates and, without
	// Options.DataDir, etcd's data: both outlive a Stop of the cluster
	// alone (restart.go) and go with Env.Stop.
	dir string

	mu      sync.Mutex // guards stopped
	stopped bool       // by Cluster.Stop
}

// ClusterName returns the conventional name of KubeVirt cluster i (1-based).
func ClusterName(i int) string { return "kubevirt-" + strconv.Itoa(i) }

// KubeconfigSecretName is the Secret RegisterCluster writes for a config.
func KubeconfigSecretName(config string) string { return config + "-kubeconfig" }

// New starts an Env for a test, skips under -short and stops it on cleanup.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("testenv: skipped with -short: this test needs real API servers (kube-apiserver and etcd from ./bin, `make tools`)")
	}
	env, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("testenv: stop: %v", err)
		}
	})
	return env
}

// Start starts the supervisor and the KubeVirt clusters concurrently, installs
// CRDs, and registers every cluster on the supervisor. On error nothing is
// left running.
func Start(ctx context.Context, opts Options) (*Env, error) {
	n := opts.Clusters
	switch {
	case n < 0:
		return nil, fmt.Errorf("testenv: Options.Clusters is %d, want >= 0", opts.Clusters)
	case opts.SupervisorOnly && n > 0:
		return nil, fmt.Errorf("testenv: Options.SupervisorOnly with Clusters %d: want Clusters 0", opts.Clusters)
	case n == 0 && !opts.SupervisorOnly:
		n = 2
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	bin, err := binaryDir(root)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	s, err := scheme.New()
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}

	e := &Env{
		Supervisor:      &Cluster{Name: SupervisorName},
		Clusters:        make([]*Cluster, n),
		ConfigNamespace: names.Namespace,
		Scheme:          s,
	}
	for i := range e.Clusters {
		e.Clusters[i] = &Cluster{Name: ClusterName(i + 1)}
	}

	all := append([]*Cluster{e.Supervisor}, e.Clusters...)
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, c := range all {
		crds := filepath.Join(root, "test", "crds", "kubevirt")
		setup := func(ctx context.Context, c *Cluster) error { return c.setupKubevirtCluster(ctx, bin) }
		if c == e.Supervisor {
			crds = filepath.Join(root, "deploy", "crds", "vitistack")
			setup = e.setupSupervisor
		}
		wg.Go(func() {
			if errs[i] = c.start(bin, crds, opts.DataDir, s); errs[i] == nil {
				errs[i] = setup(ctx, c)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: start: %w", err), e.Stop())
	}

	for _, c := range e.Clusters {
		if err := e.RegisterCluster(ctx, c.Name, c.Kubeconfig); err != nil {
			return nil, errors.Join(fmt.Errorf("testenv: %w", err), e.Stop())
		}
	}
	return e, nil
}

func (c *Cluster) start(binDir, crdDir, dataDir string, s *runtime.Scheme) error {
	dir, err := os.MkdirTemp("", "testenv-"+c.Name+"-")
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	c.dir = dir
	// Our own directories rather than envtest's temporary ones, which it
	// removes on every stop: a cluster restarted alone (Cluster.Start)
	// keeps its data and its serving and client CAs.
	etcd := &envtest.Etcd{DataDir: filepath.Join(dir, "etcd")}
	if dataDir != "" {
		etcd.DataDir = filepath.Join(dataDir, c.Name)
	}
	certs := filepath.Join(dir, "certs")
	for _, d := range []string{etcd.DataDir, certs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
	}
	c.env = &envtest.Environment{
		ControlPlane:             envtest.ControlPlane{Etcd: etcd, APIServer: &envtest.APIServer{CertDir: certs}},
		BinaryAssetsDirectory:    binDir,
		CRDDirectoryPaths:        []string{crdDir},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   s,
		ControlPlaneStartTimeout: startTimeout,
	}
	cfg, err := c.env.Start()
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	c.Config = cfg
	if c.Client, err = client.New(cfg, client.Options{Scheme: s}); err != nil {
		return fmt.Errorf("cluster %s: client: %w", c.Name, err)
	}
	c.Kubeconfig, err = c.AddUser(userName, "system:masters")
	return err
}

func (e *Env) setupSupervisor(ctx context.Context, c *Cluster) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ConfigNamespace}}
	if err := createIfAbsent(ctx, c.Client, ns); err != nil {
		return fmt.Errorf("cluster %s: creating namespace %s: %w", c.Name, e.ConfigNamespace, err)
	}
	return nil
}

// createIfAbsent creates obj, or reads it into obj if it exists: with
// Options.DataDir a restarted API server still has what the last start
// set up.
func createIfAbsent(ctx context.Context, c client.Client, obj client.Object) error {
	err := c.Create(ctx, obj)
	if apierrors.IsAlreadyExists(err) {
		return c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	}
	return err
}

// setupKubevirtCluster adds what a KubeVirt cluster has besides CRDs:
// KubeVirt's admission webhooks, a default StorageClass and the
// StorageProfile CDI derives from it.
func (c *Cluster) setupKubevirtCluster(ctx context.Context, binDir string) error {
	if err := c.startAdmission(ctx, binDir); err != nil {
		return err
	}
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultStorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       "rancher.io/local-path",
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
	if err := createIfAbsent(ctx, c.Client, sc); err != nil {
		return fmt.Errorf("cluster %s: creating StorageClass %s: %w", c.Name, sc.Name, err)
	}
	sp := &cdiv1beta1.StorageProfile{ObjectMeta: metav1.ObjectMeta{Name: DefaultStorageClass}}
	if err := createIfAbsent(ctx, c.Client, sp); err != nil {
		return fmt.Errorf("cluster %s: creating StorageProfile %s: %w", c.Name, sp.Name, err)
	}
	sp.Status = cdiv1beta1.StorageProfileStatus{
		StorageClass: ptr.To(sc.Name),
		Provisioner:  ptr.To(sc.Provisioner),
		ClaimPropertySets: []cdiv1beta1.ClaimPropertySet{{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			VolumeMode:  ptr.To(corev1.PersistentVolumeFilesystem),
		}},
	}
	if err := c.Client.Status().Update(ctx, sp); err != nil {
		return fmt.Errorf("cluster %s: StorageProfile %s status: %w", c.Name, sp.Name, err)
	}
	return nil
}

// RegisterCluster writes, on the supervisor, the kubeconfig Secret
// "<name>-kubeconfig" in ConfigNamespace and the cluster-scoped KubevirtConfig
// name pointing at it. A second call replaces the Secret's data (a rotation)
// and keeps an existing KubevirtConfig as it is. Tests use it to add broken or
// unreachable clusters; kubeconfig may be anything.
func (e *Env) RegisterCluster(ctx context.Context, name string, kubeconfig []byte) error {
	c := e.Supervisor.Client
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: KubeconfigSecretName(name), Namespace: e.ConfigNamespace}}
	data := map[string][]byte{names.KubeconfigSecretKey: kubeconfig}
	secret.Data = data
	err := c.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		if err = c.Get(ctx, client.ObjectKeyFromObject(secret), secret); err == nil {
			secret.Data = data
			err = c.Update(ctx, secret)
		}
	}
	if err != nil {
		// The error of a Secret write never contains its data.
		return fmt.Errorf("registering cluster %s: writing Secret %s/%s: %w", name, e.ConfigNamespace, secret.Name, err)
	}

	kvc := &v1alpha1.KubevirtConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.KubevirtConfigSpec{
			Name:                name,
			SecretNamespace:     e.ConfigNamespace,
			KubeconfigSecretRef: secret.Name,
		},
	}
	if err := c.Create(ctx, kvc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("registering cluster %s: creating KubevirtConfig: %w", name, err)
	}
	return nil
}

// Cluster returns the KubeVirt cluster with the given name, or nil.
func (e *Env) Cluster(name string) *Cluster {
	for _, c := range e.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Stop stops every API server concurrently. It is safe to call more than
// once and on a partly started Env.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		all := append([]*Cluster{e.Supervisor}, e.Clusters...)
		errs := make([]error, len(all))
		var wg sync.WaitGroup
		for i, c := range all {
			if c == nil {
				continue
			}
			wg.Go(func() {
				if c.admission != nil {
					errs[i] = c.admission.Stop()
				}
				if c.env != nil {
					if err := c.env.Stop(); err != nil {
						errs[i] = errors.Join(errs[i], fmt.Errorf("testenv: stopping cluster %s: %w", c.Name, err))
					}
				}
				if c.dir != "" {
					errs[i] = errors.Join(errs[i], os.RemoveAll(c.dir))
				}
			})
		}
		wg.Wait()
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// startAdmission starts KubeVirt's admission webhooks for the cluster, as
// virt-api's own user, and returns once they are live.
func (c *Cluster) startAdmission(ctx context.Context, binDir string) error {
	kubeconfig, err := c.AddUser("virt-api", "system:masters")
	if err != nil {
		return err
	}
	// The client certificate's common name is the user name the
	// admitters see: virt-controller's service account's.
	controller, err := c.AddUser(kubevirtadmission.ControllerServiceAccount, "system:masters")
	if err != nil {
		return err
	}
	if c.VirtController, err = NewClient(controller, c.Client.Scheme()); err != nil {
		return fmt.Errorf("cluster %s: virt-controller's client: %w", c.Name, err)
	}
	c.admission, err = kubevirtadmission.Start(ctx, kubevirtadmission.Options{
		Bin:        filepath.Join(binDir, kubevirtadmission.BinaryName),
		Kubeconfig: kubeconfig,
		Client:     c.Client,
		Dir:        c.dir,
		Name:       "kubevirt-webhook of cluster " + c.Name,
	})
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	return nil
}

// NewClient is an uncached client, with scheme s, of the cluster kubeconfig
// points at. Errors never quote the kubeconfig.
func NewClient(kubeconfig []byte, s *runtime.Scheme) (client.Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading a kubeconfig: %w", err)
	}
	return client.New(cfg, client.Options{Scheme: s})
}
