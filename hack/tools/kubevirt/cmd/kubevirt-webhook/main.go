// Command kubevirt-webhook serves KubeVirt's own admission webhooks, the
// ones virt-api serves, for one API server that has no virt-api: the test
// clusters and the `make run` sandbox. It wires the admitters and
// mutators as virt-api does (cluster configuration from the KubeVirt CR
// through the same informers, the same KubeVirt service accounts), and
// registers them as virt-operator does: its generated webhook
// configurations, with each service reference turned into a URL on this
// server and the bundle of a CA made at start-up.
//
// Webhooks on pods (eviction, virt-launcher pods) are left out: nothing on
// these clusters runs pods.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/clientcmd"

	virtv1 "kubevirt.io/api/core/v1"
	"kubevirt.io/client-go/kubecli"
	"kubevirt.io/kubevirt/pkg/controller"
	netadmitter "kubevirt.io/kubevirt/pkg/network/admitter"
	"kubevirt.io/kubevirt/pkg/virt-api/webhooks"
	mutating "kubevirt.io/kubevirt/pkg/virt-api/webhooks/mutating-webhook"
	validating "kubevirt.io/kubevirt/pkg/virt-api/webhooks/validating-webhook"
	virtconfig "kubevirt.io/kubevirt/pkg/virt-config"
	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server to serve (an administrator's)")
	namespace := flag.String("namespace", "kubevirt", "KubeVirt's install namespace: its KubeVirt CR and service accounts")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve the webhooks on")
	readyFile := flag.String("ready-file", "", "file written with the server's URL once the webhooks are registered")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, log, *kubeconfig, *namespace, *listen, *readyFile); err != nil {
		log.Error("kubevirt-webhook failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, kubeconfig, namespace, listen, readyFile string) error {
	if kubeconfig == "" {
		return fmt.Errorf("-kubeconfig is required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	virtCli, err := kubecli.GetKubevirtClientFromRESTConfig(cfg)
	if err != nil {
		return fmt.Errorf("KubeVirt client: %w", err)
	}
	if err := ensureKubeVirtCR(ctx, virtCli, namespace); err != nil {
		return err
	}

	// As virt-api: informers for the configuration and the lookups the
	// admitters make.
	factory := controller.NewKubeInformerFactory(virtCli.RestClient(), virtCli, nil, namespace)
	kubeVirtInformer := factory.KubeVirt()
	crdInformer := factory.CRD()
	informers := &webhooks.Informers{
		VMIPresetInformer: factory.VirtualMachinePreset(),
		VMRestoreInformer: factory.VirtualMachineRestore(),
		VMBackupInformer:  factory.VirtualMachineBackup(),
		NamespaceInformer: factory.Namespace(),
	}
	stopCh := make(chan struct{})
	defer close(stopCh)
	factory.Start(stopCh)
	factory.WaitForCacheSync(stopCh)
	clusterConfig, err := virtconfig.NewClusterConfig(crdInformer, kubeVirtInformer, namespace)
	if err != nil {
		return fmt.Errorf("cluster configuration: %w", err)
	}
	if clusterConfig.HasDataSourceAPI() {
		informers.DataSourceInformer = factory.DataSource()
	} else {
		informers.DataSourceInformer = factory.DummyDataSource()
	}
	factory.Start(stopCh)
	factory.WaitForCacheSync(stopCh)

	mux := serveMux(clusterConfig, virtCli, informers, webhooks.KubeVirtServiceAccounts(namespace))

	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	host, _, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return err
	}
	ca, tlsConfig, err := newServingTLS(host)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l, "", "") }()

	url := "https://" + l.Addr().String()
	if err := register(ctx, virtCli, namespace, url, ca, mux); err != nil {
		_ = srv.Close()
		return err
	}
	if readyFile != "" {
		if err := os.WriteFile(readyFile, []byte(url+"\n"), 0o600); err != nil {
			_ = srv.Close()
			return fmt.Errorf("writing %s: %w", readyFile, err)
		}
	}
	log.Info("serving KubeVirt's admission webhooks", "url", url, "namespace", namespace)

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// serveMux routes virt-api's webhook paths to KubeVirt's handlers, with
// the arguments virt-api passes them.
func serveMux(cc *virtconfig.ClusterConfig, virtCli kubecli.KubevirtClient, inf *webhooks.Informers, sas map[string]struct{}) *http.ServeMux {
	handlers := map[string]http.HandlerFunc{
		components.VMICreateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating.ServeVMICreate(w, r, cc, sas, func(f *field.Path, spec *virtv1.VirtualMachineInstanceSpec, c *virtconfig.ClusterConfig) []metav1.StatusCause {
				return netadmitter.Validate(f, spec, c)
			})
		},
		components.VMIUpdateValidatePath:       func(w http.ResponseWriter, r *http.Request) { validating.ServeVMIUpdate(w, r, cc, sas) },
		components.VMValidatePath:              func(w http.ResponseWriter, r *http.Request) { validating.ServeVMs(w, r, cc, virtCli, inf, sas) },
		components.VMIRSValidatePath:           func(w http.ResponseWriter, r *http.Request) { validating.ServeVMIRS(w, r, cc) },
		components.VMPoolValidatePath:          func(w http.ResponseWriter, r *http.Request) { validating.ServeVMPool(w, r, cc, sas) },
		components.VMIPresetValidatePath:       func(w http.ResponseWriter, r *http.Request) { validating.ServeVMIPreset(w, r) },
		components.MigrationCreateValidatePath: func(w http.ResponseWriter, r *http.Request) { validating.ServeMigrationCreate(w, r, cc, virtCli, sas) },
		components.MigrationUpdateValidatePath: func(w http.ResponseWriter, r *http.Request) { validating.ServeMigrationUpdate(w, r) },
		components.VMSnapshotValidatePath:      func(w http.ResponseWriter, r *http.Request) { validating.ServeVMSnapshots(w, r, cc, virtCli) },
		components.VMRestoreValidatePath:       func(w http.ResponseWriter, r *http.Request) { validating.ServeVMRestores(w, r, cc, virtCli, inf) },
		components.VMBackupValidatePath:        func(w http.ResponseWriter, r *http.Request) { validating.ServeVMBackups(w, r, cc, virtCli, inf) },
		components.VMBackupTrackerValidatePath: func(w http.ResponseWriter, r *http.Request) { validating.ServeVMBackupTrackers(w, r, cc) },
		components.VMExportValidatePath:        func(w http.ResponseWriter, r *http.Request) { validating.ServeVMExports(w, r, cc) },
		components.VMInstancetypeValidatePath:  func(w http.ResponseWriter, r *http.Request) { validating.ServeVmInstancetypes(w, r) },
		components.VMClusterInstancetypeValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating.ServeVmClusterInstancetypes(w, r)
		},
		components.VMPreferenceValidatePath: func(w http.ResponseWriter, r *http.Request) { validating.ServeVmPreferences(w, r) },
		components.VMClusterPreferenceValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating.ServeVmClusterPreferences(w, r)
		},
		components.StatusValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating.ServeStatusValidation(w, r, cc, virtCli, inf, sas)
		},
		components.MigrationPolicyCreateValidatePath: func(w http.ResponseWriter, r *http.Request) { validating.ServeMigrationPolicies(w, r) },
		components.VMCloneCreateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating.ServeVirtualMachineClones(w, r, cc, virtCli)
		},
		components.VMMutatePath:            func(w http.ResponseWriter, r *http.Request) { mutating.ServeVMs(w, r, cc, virtCli) },
		components.VMIMutatePath:           func(w http.ResponseWriter, r *http.Request) { mutating.ServeVMIs(w, r, cc, inf, sas) },
		components.MigrationMutatePath:     func(w http.ResponseWriter, r *http.Request) { mutating.ServeMigrationCreate(w, r) },
		components.VMCloneCreateMutatePath: func(w http.ResponseWriter, r *http.Request) { mutating.ServeClones(w, r) },
	}
	mux := http.NewServeMux()
	for path, h := range handlers {
		mux.HandleFunc(path, h)
	}
	return mux
}

// ensureKubeVirtCR creates KubeVirt's namespace and a deployed KubeVirt
// CR as a default install has them, unless they exist: the CR is where
// the cluster configuration (feature gates among it) comes from, and a
// test may edit it.
func ensureKubeVirtCR(ctx context.Context, virtCli kubecli.KubevirtClient, namespace string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := virtCli.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	kv := &virtv1.KubeVirt{
		ObjectMeta: metav1.ObjectMeta{Name: "kubevirt", Namespace: namespace},
		Spec: virtv1.KubeVirtSpec{
			CertificateRotationStrategy: virtv1.KubeVirtCertificateRotateStrategy{},
			Configuration:               virtv1.KubeVirtConfiguration{DeveloperConfiguration: &virtv1.DeveloperConfiguration{}},
			ImagePullPolicy:             corev1.PullIfNotPresent,
		},
	}
	created, err := virtCli.KubeVirt(namespace).Create(ctx, kv, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		if created, err = virtCli.KubeVirt(namespace).Get(ctx, kv.Name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("reading the KubeVirt CR %s/%s: %w", namespace, kv.Name, err)
		}
	case err != nil:
		return fmt.Errorf("creating the KubeVirt CR %s/%s: %w", namespace, kv.Name, err)
	}
	// KubeVirt's components take their configuration only from a CR
	// virt-operator has deployed, with the default architecture it
	// records; this server stands in for that install.
	if created.Status.Phase == virtv1.KubeVirtPhaseDeployed && created.Status.DefaultArchitecture != "" {
		return nil
	}
	created.Status.Phase = virtv1.KubeVirtPhaseDeployed
	created.Status.DefaultArchitecture = runtime.GOARCH
	if _, err := virtCli.KubeVirt(namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("marking the KubeVirt CR %s/%s deployed: %w", namespace, kv.Name, err)
	}
	return nil
}

// register writes virt-operator's webhook configurations, keeping the
// webhooks this server serves, each pointed at url with caPEM.
func register(ctx context.Context, virtCli kubecli.KubevirtClient, namespace, url string, caPEM []byte, mux *http.ServeMux) error {
	served := func(svc *admissionregistrationv1.ServiceReference) (admissionregistrationv1.WebhookClientConfig, bool) {
		if svc == nil || svc.Path == nil {
			return admissionregistrationv1.WebhookClientConfig{}, false
		}
		req, err := http.NewRequest(http.MethodPost, *svc.Path, nil)
		if err != nil {
			return admissionregistrationv1.WebhookClientConfig{}, false
		}
		if _, pattern := mux.Handler(req); pattern == "" {
			return admissionregistrationv1.WebhookClientConfig{}, false
		}
		u := url + *svc.Path
		return admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: caPEM}, true
	}

	vwc := components.NewVirtAPIValidatingWebhookConfiguration(namespace)
	vwc.Webhooks = keepServed(vwc.Webhooks, func(w *admissionregistrationv1.ValidatingWebhook) *admissionregistrationv1.WebhookClientConfig {
		return &w.ClientConfig
	}, served)
	mwc := components.NewVirtAPIMutatingWebhookConfiguration(namespace)
	mwc.Webhooks = keepServed(mwc.Webhooks, func(w *admissionregistrationv1.MutatingWebhook) *admissionregistrationv1.WebhookClientConfig {
		return &w.ClientConfig
	}, served)

	ar := virtCli.AdmissionregistrationV1()
	if err := apply(ctx, vwc, ar.ValidatingWebhookConfigurations().Create, ar.ValidatingWebhookConfigurations().Get, ar.ValidatingWebhookConfigurations().Update,
		func(cur, want *admissionregistrationv1.ValidatingWebhookConfiguration) { cur.Webhooks = want.Webhooks }); err != nil {
		return err
	}
	return apply(ctx, mwc, ar.MutatingWebhookConfigurations().Create, ar.MutatingWebhookConfigurations().Get, ar.MutatingWebhookConfigurations().Update,
		func(cur, want *admissionregistrationv1.MutatingWebhookConfiguration) { cur.Webhooks = want.Webhooks })
}

// keepServed keeps the webhooks whose service reference served turns
// into a client configuration, with that configuration.
func keepServed[W any](hooks []W, config func(*W) *admissionregistrationv1.WebhookClientConfig,
	served func(*admissionregistrationv1.ServiceReference) (admissionregistrationv1.WebhookClientConfig, bool),
) []W {
	kept := hooks[:0]
	for _, wh := range hooks {
		cc := config(&wh)
		if next, ok := served(cc.Service); ok {
			*cc = next
			kept = append(kept, wh)
		}
	}
	return kept
}

type object interface {
	*admissionregistrationv1.ValidatingWebhookConfiguration | *admissionregistrationv1.MutatingWebhookConfiguration
	GetName() string
}

// apply creates want, or replaces the webhooks of the one a previous
// start registered (with another port and CA).
func apply[T object](ctx context.Context, want T,
	create func(context.Context, T, metav1.CreateOptions) (T, error),
	get func(context.Context, string, metav1.GetOptions) (T, error),
	update func(context.Context, T, metav1.UpdateOptions) (T, error),
	set func(cur, want T),
) error {
	_, err := create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur T
		if cur, err = get(ctx, want.GetName(), metav1.GetOptions{}); err == nil {
			set(cur, want)
			_, err = update(ctx, cur, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("registering %s: %w", want.GetName(), err)
	}
	return nil
}
