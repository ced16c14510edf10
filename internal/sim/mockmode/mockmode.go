package mockmode

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.uber.org/fx"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/background"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
)

// Names of the demo objects.
const (
	Namespace        = "default"
	ConfigA          = "demo-a"
	ConfigB          = "demo-b"
	MachineClass     = "small"
	NetworkNamespace = "default"
	// StorageClass is the default StorageClass of both clusters.
	StorageClass = "mock-local"
	// FailingMachine's VM never boots.
	FailingMachine = "demo-fail"
)

// Machines are the demo Machines: demo-1 and demo-2 go to the default
// config, demo-3 to demo-b, FailingMachine fails to boot.
var Machines = []string{"demo-1", "demo-2", "demo-3", FailingMachine}

// Simulated boot: long enough to watch in the UI, short enough to wait for.
const (
	bootDelay        = 2 * time.Second
	terminationDelay = time.Second
)

// Env is the in-memory world of mock mode.
type Env struct {
	// Supervisor holds the demo Machines, classes and configs.
	Supervisor client.Client
	// Clusters are the KubeVirt clusters' clients by config name.
	Clusters map[string]client.Client
	// Manager hands out Clusters.
	Manager *clients.MockClientManager
	sims    *kubevirtsim.Fleet
}

// New builds the demo world. defaultConfig places Machines without the
// annotation ("" means ConfigA); configNamespace is reported by the manager.
func New(opts clients.ModuleOptions, log logr.Logger) (*Env, error) {
	s, err := scheme.New()
	if err != nil {
		return nil, err
	}
	defaultConfig := opts.DefaultConfig
	if defaultConfig == "" {
		defaultConfig = ConfigA
	}
	if defaultConfig != ConfigA && defaultConfig != ConfigB {
		return nil, fmt.Errorf("DEFAULT_KUBEVIRT_CONFIG=%q: mock mode has only %s and %s", defaultConfig, ConfigA, ConfigB)
	}
	e := &Env{Clusters: map[string]client.Client{}, Manager: clients.NewMockClientManager()}
	e.Manager.ConfigNamespace = opts.ConfigNamespace
	e.Manager.DefaultConfig = defaultConfig

	seed := []client.Object{machineClass(), networkNamespace()}
	var targets []kubevirtsim.Target
	for _, name := range []string{ConfigA, ConfigB} {
		config := kubevirtConfig(name, opts.ConfigNamespace)
		seed = append(seed, config)
		e.Manager.AddMockedConfig(*config)

		cluster := newFake(s).
			WithStatusSubresource(&kubevirtv1.VirtualMachine{}, &cdiv1beta1.DataVolume{}).
			WithObjects(storage()...).
			Build()
		e.Clusters[name] = cluster
		e.Manager.AddMockedClient(name, cluster)
		targets = append(targets, kubevirtsim.Target{Name: name, Client: cluster})
	}
	// demo-a's addresses are 10.100.x.x, demo-b's 10.101.x.x.
	if e.sims, err = kubevirtsim.NewFleet(targets, kubevirtsim.Options{
		AddressPool: "10.100.0.0/16", BootDelay: bootDelay, TerminationDelay: terminationDelay, Logger: log,
	}); err != nil {
		return nil, fmt.Errorf("simulators: %w", err)
	}
	for _, name := range Machines {
		seed = append(seed, machine(name))
	}
	e.Supervisor = newFake(s).
		WithStatusSubresource(&v1alpha1.Machine{}, &v1alpha1.KubevirtConfig{}).
		WithObjects(seed...).
		Build()
	return e, nil
}

// newFake starts a fake client on a plain object tracker: the default
// one tracks managed fields through a type converter deduced from the Go
// types, which panics on the unsigned integers of KubeVirt's and
// vitistack's types. Server-side apply is therefore unavailable, and
// nothing in the worker uses it.
func newFake(s *runtime.Scheme) *fake.ClientBuilder {
	return fake.NewClientBuilder().WithScheme(s).
		WithObjectTracker(clienttesting.NewObjectTracker(s, serializer.NewCodecFactory(s).UniversalDecoder()))
}

// Run runs the simulators until ctx ends.
func (e *Env) Run(ctx context.Context) error { return e.sims.Run(ctx) }

// storage is a default StorageClass and its CDI StorageProfile, which the
// activities consult to size and shape disks.
func storage() []client.Object {
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: StorageClass, Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: "mock.machineflow.io/local",
	}
	sp := &cdiv1beta1.StorageProfile{
		ObjectMeta: metav1.ObjectMeta{Name: StorageClass},
		Status: cdiv1beta1.StorageProfileStatus{
			StorageClass: &sc.Name,
			Provisioner:  &sc.Provisioner,
			ClaimPropertySets: []cdiv1beta1.ClaimPropertySet{{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				VolumeMode:  ptr.To(corev1.PersistentVolumeFilesystem),
			}},
		},
	}
	return []client.Object{sc, sp}
}

func kubevirtConfig(name, secretNamespace string) *v1alpha1.KubevirtConfig {
	return &v1alpha1.KubevirtConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.KubevirtConfigSpec{Name: name, SecretNamespace: secretNamespace, KubeconfigSecretRef: name + "-kubeconfig"},
	}
}

func machineClass() *v1alpha1.MachineClass {
	return &v1alpha1.MachineClass{
		ObjectMeta: metav1.ObjectMeta{Name: MachineClass},
		Spec: v1alpha1.MachineClassSpec{
			DisplayName: "Small", Enabled: true, Default: true, Category: "standard",
			MachineProviders: []v1alpha1.MachineProviderType{names.ProviderKubevirt},
			CPU:              v1alpha1.MachineClassCPUSpec{Cores: 1, Sockets: 1, Threads: 1},
			Memory:           v1alpha1.MachineClassMemorySpec{Quantity: resource.MustParse("2Gi")},
		},
	}
}

func networkNamespace() *v1alpha1.NetworkNamespace {
	return &v1alpha1.NetworkNamespace{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: NetworkNamespace},
		Spec: v1alpha1.NetworkNamespaceSpec{
			DatacenterIdentifier: "mock-dc1", SupervisorIdentifier: "mock",
			IPAllocation: &v1alpha1.NetworkNamespaceIPAllocation{Type: "dhcp"},
		},
	}
}

func machine(name string) *v1alpha1.Machine {
	m := &v1alpha1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name},
		Spec: v1alpha1.MachineSpec{
			Name:         name,
			Provider:     names.ProviderKubevirt,
			MachineClass: MachineClass,
			OS:           v1alpha1.MachineOS{Family: "linux", Distribution: "ubuntu", Version: "24.04"},
		},
	}
	switch name {
	case "demo-3":
		m.Annotations = map[string]string{names.PlacementAnnotation: ConfigB}
	case FailingMachine:
		m.Annotations = map[string]string{kubevirtsim.FailureAnnotation: string(kubevirtsim.ErrImagePull)}
	}
	return m
}

// Module provides the supervisor's client.Client and the
// *clients.MockClientManager of mock mode (which clients.Module then uses)
// and runs the simulators from start to stop.
var Module = fx.Module("mockmode",
	fx.Provide(
		newModuleEnv,
		func(e *Env) client.Client { return e.Supervisor },
		func(e *Env) *clients.MockClientManager { return e.Manager },
	),
)

func newModuleEnv(lc fx.Lifecycle, opts clients.ModuleOptions, log logr.Logger) (*Env, error) {
	e, err := New(opts, log.WithName("kubevirtsim"))
	if err != nil {
		return nil, err
	}
	background.Go(lc, "the KubeVirt simulators", func(ctx context.Context) {
		log.Info("Mock mode: in-memory supervisor and KubeVirt clusters, no Kubernetes",
			"kubevirtConfigs", []string{ConfigA, ConfigB}, "namespace", Namespace, "machines", Machines)
		if err := e.Run(ctx); err != nil {
			log.Error(err, "KubeVirt simulator stopped")
		}
	})
	return e, nil
}
