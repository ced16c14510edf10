package main

import (
	"errors"
	"flag"
	"io"
	"time"

	"github.com/machineflow/machineflow/controller"
	"github.com/machineflow/machineflow/internal/config/check"
	"github.com/machineflow/machineflow/internal/config/envflag"
	"github.com/machineflow/machineflow/internal/logging"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/supervisor"
	"github.com/machineflow/machineflow/internal/temporalclient"
	"github.com/machineflow/machineflow/workflows"
)

// Defaults that are not another package's.
const (
	defaultLeaderElectionID = "machineflow-controller"
	defaultMetricsAddress   = ":8080"
	defaultProbeAddress     = ":8081"
	defaultConcurrency      = 4
	// defaultStopTimeout bounds a graceful stop: running reconciles get
	// this long, then the lease is released. With fx's margin it stays
	// below the pod's terminationGracePeriodSeconds (30, deploy/base).
	defaultStopTimeout = 20 * time.Second
)

// config is the controller's whole configuration.
type config struct {
	Temporal   temporalclient.Options
	Supervisor supervisor.Options
	Log        logging.Options
	Controller controller.ModuleOptions
	Manager    managerOptions
}

// managerOptions configure the controller-runtime manager.
type managerOptions struct {
	// MetricsAddress serves /metrics; "0" turns it off (METRICS_BIND_ADDRESS).
	MetricsAddress string
	// ProbeAddress serves /healthz and /readyz (HEALTH_PROBE_BIND_ADDRESS).
	ProbeAddress string
	// LeaderElect lets one replica reconcile at a time (LEADER_ELECT).
	LeaderElect             bool
	LeaderElectionID        string
	LeaderElectionNamespace string
	StopTimeout             time.Duration
}

// load reads the configuration from args (without the program name) and
// lookup (os.LookupEnv). Usage goes to usage on -h, and then the error is
// flag.ErrHelp. Every invalid setting is reported at once, each naming its
// variable or flag.
func load(args []string, lookup func(string) (string, bool), usage io.Writer) (config, error) {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.SetOutput(usage)
	b := envflag.New(fs)

	var c config
	c.Temporal.Bind(b)
	fs.StringVar(&c.Supervisor.Kubeconfig, "kubeconfig", "", "kubeconfig of the supervisor cluster; default: $KUBECONFIG, then in-cluster, then ~/.kube/config")
	c.Supervisor.Bind(b)
	b.String(&c.Controller.Trigger.TaskQueue, "task-queue", "TASK_QUEUE", workflows.DefaultTaskQueue, "Temporal task queue the workflows are started on")
	b.Duration(&c.Controller.Trigger.BootTimeout, "boot-timeout", "BOOT_TIMEOUT", 0, "how long ProvisionMachine waits for a VM to run; 0: the workflow's default ("+workflows.DefaultBootTimeout.String()+")")
	b.Duration(&c.Controller.Trigger.RetryBackoff.Initial, "retry-backoff-initial", "RETRY_BACKOFF_INITIAL", controller.DefaultRetryInitial, "wait after a failed workflow before the next attempt; doubles per attempt")
	b.Duration(&c.Controller.Trigger.RetryBackoff.Max, "retry-backoff-max", "RETRY_BACKOFF_MAX", controller.DefaultRetryMax, "longest wait between attempts of a failing workflow")
	b.Int(&c.Controller.MaxConcurrentReconciles, "max-concurrent-reconciles", "MAX_CONCURRENT_RECONCILES", defaultConcurrency, "Machines reconciled at once")
	b.Duration(&c.Controller.ReconcileTimeout, "reconcile-timeout", "RECONCILE_TIMEOUT", controller.DefaultReconcileTimeout, "bound of one reconcile")
	b.Duration(&c.Controller.RequeueMin, "requeue-min", "REQUEUE_MIN", controller.DefaultRequeueMin, "shortest wait before looking again at an open workflow")
	b.Duration(&c.Controller.RequeueMax, "requeue-max", "REQUEUE_MAX", controller.DefaultRequeueMax, "longest wait before looking again at an open workflow")
	b.Int(&c.Controller.MaxRunWaiters, "max-run-waiters", "MAX_RUN_WAITERS", controller.DefaultMaxRunWaiters, "open workflows whose close is awaited at once (one long poll each), so their Machine is reconciled the moment they close; -1: none, the requeues alone notice")
	b.String(&c.Manager.MetricsAddress, "metrics-bind-address", "METRICS_BIND_ADDRESS", defaultMetricsAddress, "listen address of /metrics; 0 turns it off")
	b.String(&c.Manager.ProbeAddress, "health-probe-bind-address", "HEALTH_PROBE_BIND_ADDRESS", defaultProbeAddress, "listen address of /healthz and /readyz")
	b.Bool(&c.Manager.LeaderElect, "leader-elect", "LEADER_ELECT", true, "elect one active replica through a Lease; turn off only for a single local instance")
	b.String(&c.Manager.LeaderElectionID, "leader-election-id", "LEADER_ELECTION_ID", defaultLeaderElectionID, "name of the leader election Lease")
	b.String(&c.Manager.LeaderElectionNamespace, "leader-election-namespace", "LEADER_ELECTION_NAMESPACE", names.Namespace, "namespace of the leader election Lease")
	b.Duration(&c.Manager.StopTimeout, "stop-timeout", "STOP_TIMEOUT", defaultStopTimeout, "how long running reconciles may take to finish on shutdown")
	b.String(&c.Log.Format, "log-format", "LOG_FORMAT", logging.DefaultOptions().Format, "json or text")
	b.String(&c.Log.Level, "log-level", "LOG_LEVEL", logging.DefaultOptions().Level, "debug, info, warn or error")

	envErr, err := b.Parse(args, lookup)
	if err != nil {
		return config{}, err
	}
	if err := errors.Join(envErr, c.validate()); err != nil {
		return config{}, err
	}
	return c, nil
}

// validate reports every invalid setting, naming its variable.
func (c config) validate() error {
	var p check.Problems
	p.Add(c.Temporal.Validate())
	p.Add(c.Log.Validate())
	t, m := c.Controller.Trigger, c.Manager
	p.NotEmpty("TASK_QUEUE", t.TaskQueue)
	if t.BootTimeout < 0 || t.BootTimeout > workflows.MaxBootTimeout {
		p.Addf("BOOT_TIMEOUT=%s: must be 0 (the default) up to %s", t.BootTimeout, workflows.MaxBootTimeout)
	}
	if t.RetryBackoff.Initial <= 0 || t.RetryBackoff.Max < t.RetryBackoff.Initial {
		p.Addf("RETRY_BACKOFF_INITIAL=%s, RETRY_BACKOFF_MAX=%s: want 0 < initial <= max", t.RetryBackoff.Initial, t.RetryBackoff.Max)
	}
	p.AtLeastOne("MAX_CONCURRENT_RECONCILES", c.Controller.MaxConcurrentReconciles)
	p.Positive("RECONCILE_TIMEOUT", c.Controller.ReconcileTimeout)
	if c.Controller.RequeueMin <= 0 || c.Controller.RequeueMax < c.Controller.RequeueMin {
		p.Addf("REQUEUE_MIN=%s, REQUEUE_MAX=%s: want 0 < min <= max", c.Controller.RequeueMin, c.Controller.RequeueMax)
	}
	if m.MetricsAddress != "0" && !check.IsAddress(m.MetricsAddress) {
		p.Addf("METRICS_BIND_ADDRESS=%q: must be [host]:port, or 0 to turn it off", m.MetricsAddress)
	}
	p.Address("HEALTH_PROBE_BIND_ADDRESS", m.ProbeAddress)
	p.DNSSubdomain("LEADER_ELECTION_ID", m.LeaderElectionID)
	p.DNSLabel("LEADER_ELECTION_NAMESPACE", m.LeaderElectionNamespace)
	p.Positive("STOP_TIMEOUT", m.StopTimeout)
	p.File("--kubeconfig", c.Supervisor.Kubeconfig)
	p.Add(c.Supervisor.Validate())
	return p.Err()
}
