// Package config reads the worker's configuration from command-line flags
// and environment variables, validates all of it before anything starts,
// and hands each module its part through fx.
//
// Every setting has a flag and a variable; a flag given on the command
// line wins over the variable, which wins over the default (see envflag).
// The activity settings keep the kubevirt-operator's variable names
// (CPU_MODEL, IP_SOURCE, ...) so that a deployment can switch without
// renaming; activities.LoadSettings parses them, so the rules live in one
// place.
//
// Load collects every problem at once (package check); check.ExitStatus
// prints them as the one line the worker exits with.
package config

import (
	"errors"
	"flag"
	"io"
	"time"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/config/check"
	"github.com/machineflow/machineflow/internal/config/envflag"
	"github.com/machineflow/machineflow/internal/logging"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/observability"
	"github.com/machineflow/machineflow/internal/registration"
	"github.com/machineflow/machineflow/internal/supervisor"
	"github.com/machineflow/machineflow/internal/temporalclient"
	"github.com/machineflow/machineflow/internal/worker"
	"github.com/machineflow/machineflow/workflows"
)

// ClientManager modes (CLIENT_MANAGER).
const (
	ClientManagerReal = "real"
	ClientManagerMock = "mock"
)

// Defaults that are not another package's.
const (
	// DefaultStopTimeout bounds a graceful stop: running activities get
	// this long to finish. Keep it below the pod's
	// terminationGracePeriodSeconds.
	DefaultStopTimeout = 30 * time.Second
)

// Config is the worker's whole configuration.
type Config struct {
	Temporal temporalclient.Options
	// TaskQueue is the queue the worker polls (TASK_QUEUE).
	TaskQueue string
	// Supervisor says how to reach the supervisor cluster (--kubeconfig)
	// and how fast (SUPERVISOR_QPS, SUPERVISOR_BURST).
	Supervisor supervisor.Options
	// ConfigNamespace holds kubeconfig Secrets (CONFIG_NAMESPACE).
	ConfigNamespace string
	// DefaultKubevirtConfig places Machines without the placement
	// annotation (DEFAULT_KUBEVIRT_CONFIG); empty means search.
	DefaultKubevirtConfig string
	// Activities are the operator's settings (CPU_MODEL, IP_SOURCE, ...).
	Activities activities.Settings
	// ClientManager is real or mock (CLIENT_MANAGER).
	ClientManager string
	// Resilience tunes retries and circuit breakers towards the clusters.
	Resilience clients.ResilienceOptions
	// KubevirtQPS and KubevirtBurst are the client-side rate limit towards
	// each KubeVirt cluster, per API resource (KUBEVIRT_QPS,
	// KUBEVIRT_BURST).
	KubevirtQPS   float32
	KubevirtBurst int
	Metrics       observability.Options
	Log           logging.Options
	// StopTimeout bounds graceful shutdown (WORKER_STOP_TIMEOUT).
	StopTimeout time.Duration
	// MaxTaskPollers caps the autoscaled task pollers per kind
	// (MAX_TASK_POLLERS).
	MaxTaskPollers int
	// Registration names the MachineProvider the worker registers
	// (NAME_MACHINE_PROVIDER, VITISTACK_NAME); its ConfigNamespace is
	// filled in by Module.
	Registration registration.Options
}

// activityFlags are the flags of the operator's settings, by variable.
// The variables are read by activities.LoadSettings.
var activityFlags = []struct{ env, flag, usage string }{
	{"CPU_MODEL", "cpu-model", "KubeVirt CPU model of the VMs"},
	{"PVC_VOLUME_MODE", "pvc-volume-mode", "volume mode of disks: Block or Filesystem"},
	{"PVC_ACCESS_MODE", "pvc-access-mode", "access mode of disks when no StorageProfile says better"},
	{"STORAGE_CLASS_NAME", "storage-class-name", "storage class of disks; empty means the cluster's default"},
	{"IP_SOURCE", "ip-source", "where Machine addresses come from: vmi or networkconfiguration"},
	{"MAC_SET", "mac-set", "second octet of generated MAC addresses, two hex digits"},
	{"NETWORK_ATTACHMENT_DEFINITION_CNI_VERSION", "nad-cni-version", "cniVersion of created NetworkAttachmentDefinitions"},
}

// Load reads the configuration from args (without the program name) and
// lookup (os.LookupEnv). Usage goes to usage on -h, and then the error is
// flag.ErrHelp.
func Load(args []string, lookup func(string) (string, bool), usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(usage)
	b := envflag.New(fs)

	var c Config
	c.Temporal.Bind(b)
	b.String(&c.TaskQueue, "task-queue", "TASK_QUEUE", workflows.DefaultTaskQueue, "Temporal task queue to poll")
	fs.StringVar(&c.Supervisor.Kubeconfig, "kubeconfig", "", "kubeconfig of the supervisor cluster; default: $KUBECONFIG, then in-cluster, then ~/.kube/config")
	c.Supervisor.Bind(b)
	b.String(&c.ConfigNamespace, "config-namespace", "CONFIG_NAMESPACE", names.Namespace, "namespace of kubeconfig Secrets whose KubevirtConfig names none")
	b.String(&c.DefaultKubevirtConfig, "default-kubevirt-config", "DEFAULT_KUBEVIRT_CONFIG", "", "KubevirtConfig for Machines without the vitistack.io/kubevirt-config annotation; empty: the only config, else search")
	b.String(&c.ClientManager, "client-manager", "CLIENT_MANAGER", ClientManagerReal, "real, or mock for an in-memory demo without Kubernetes")
	b.Int(&c.Resilience.Attempts, "cluster-retry-attempts", "CLUSTER_RETRY_ATTEMPTS", clients.DefaultRetryAttempts, "tries of a ClientManager call that fails transiently")
	b.Int(&c.Resilience.FailureThreshold, "circuit-failure-threshold", "CIRCUIT_FAILURE_THRESHOLD", clients.DefaultFailureThreshold, "consecutive transient failures that open a cluster's circuit breaker")
	b.Duration(&c.Resilience.CoolDown, "circuit-cool-down", "CIRCUIT_COOL_DOWN", clients.DefaultCoolDown, "how long an open circuit breaker fails fast before a probe")
	b.Float32(&c.KubevirtQPS, "kubevirt-qps", "KUBEVIRT_QPS", clients.DefaultQPS, "requests per second to each KubeVirt cluster, per API resource (VMs, PVCs, ...)")
	b.Int(&c.KubevirtBurst, "kubevirt-burst", "KUBEVIRT_BURST", clients.DefaultBurst, "requests to each KubeVirt cluster per API resource allowed at once above KUBEVIRT_QPS")
	b.String(&c.Metrics.Address, "metrics-address", "METRICS_ADDRESS", observability.DefaultAddress, "listen address of /metrics, /healthz and /readyz")
	b.String(&c.Log.Format, "log-format", "LOG_FORMAT", logging.DefaultOptions().Format, "json or text")
	b.String(&c.Log.Level, "log-level", "LOG_LEVEL", logging.DefaultOptions().Level, "debug, info, warn or error")
	b.Duration(&c.StopTimeout, "worker-stop-timeout", "WORKER_STOP_TIMEOUT", DefaultStopTimeout, "how long running activities may take to finish on shutdown")
	b.Int(&c.MaxTaskPollers, "max-task-pollers", "MAX_TASK_POLLERS", worker.DefaultMaxTaskPollers, "most concurrent polls per kind of task (workflow, activity); autoscaling chooses how many below it")
	b.String(&c.Registration.ProviderName, "machine-provider-name", "NAME_MACHINE_PROVIDER", registration.DefaultProviderName, "MachineProvider registered on the supervisor at start-up, made from the KubevirtConfig of that name")
	b.String(&c.Registration.VitistackName, "vitistack-name", "VITISTACK_NAME", "", "Vitistack that may list the MachineProvider and gives its region; empty: none")

	defaults := activities.DefaultSettings()
	defaultOf := map[string]string{
		"CPU_MODEL": defaults.CPUModel, "PVC_VOLUME_MODE": defaults.PVCVolumeMode, "PVC_ACCESS_MODE": defaults.PVCAccessMode,
		"STORAGE_CLASS_NAME": defaults.StorageClassName, "IP_SOURCE": defaults.IPSource, "MAC_SET": defaults.MACSet,
		"NETWORK_ATTACHMENT_DEFINITION_CNI_VERSION": defaults.NADCNIVersion,
	}
	activityValues := map[string]*string{}
	for _, a := range activityFlags {
		activityValues[a.env] = fs.String(a.flag, defaultOf[a.env], a.usage+" [$"+a.env+"]")
	}

	envErr, err := b.Parse(args, lookup)
	if err != nil {
		return Config{}, err
	}

	// A flag given on the command line wins over the variable that
	// activities.LoadSettings would read.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	settings, settingsErr := activities.LoadSettings(func(env string) (string, bool) {
		for _, a := range activityFlags {
			if a.env == env && given[a.flag] {
				return *activityValues[env], true
			}
		}
		return lookup(env)
	})
	c.Activities = settings

	if err := errors.Join(envErr, settingsErr, c.Validate()); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports every invalid setting except the activity settings,
// which LoadSettings has checked.
func (c Config) Validate() error {
	var p check.Problems
	p.Add(c.Temporal.Validate())
	p.Add(c.Log.Validate())
	p.NotEmpty("TASK_QUEUE", c.TaskQueue)
	p.DNSLabel("CONFIG_NAMESPACE", c.ConfigNamespace)
	if c.DefaultKubevirtConfig != "" {
		p.DNSSubdomain("DEFAULT_KUBEVIRT_CONFIG", c.DefaultKubevirtConfig)
	}
	switch c.ClientManager {
	case ClientManagerReal:
		p.File("--kubeconfig", c.Supervisor.Kubeconfig)
	case ClientManagerMock:
	default:
		p.Addf("CLIENT_MANAGER=%q: must be %s or %s", c.ClientManager, ClientManagerReal, ClientManagerMock)
	}
	p.AtLeastOne("CLUSTER_RETRY_ATTEMPTS", c.Resilience.Attempts)
	p.AtLeastOne("CIRCUIT_FAILURE_THRESHOLD", c.Resilience.FailureThreshold)
	p.Positive("CIRCUIT_COOL_DOWN", c.Resilience.CoolDown)
	p.Add(c.Supervisor.Validate())
	p.PositiveNumber("KUBEVIRT_QPS", float64(c.KubevirtQPS))
	p.AtLeastOne("KUBEVIRT_BURST", c.KubevirtBurst)
	p.Address("METRICS_ADDRESS", c.Metrics.Address)
	p.Positive("WORKER_STOP_TIMEOUT", c.StopTimeout)
	p.AtLeastOne("MAX_TASK_POLLERS", c.MaxTaskPollers)
	p.Add(c.Registration.Validate())
	return p.Err()
}
