package workflows

import (
	"time"

	"github.com/machineflow/machineflow/activities/contract"
)

// Workflow type names, task queue and search attributes: contracts with the
// Temporal CLI, the UI, the starter and the controller (shared/DESIGN.md).
const (
	ProvisionMachineName   = "ProvisionMachine"
	DeprovisionMachineName = "DeprovisionMachine"
	ClusterHealthCheckName = "ClusterHealthCheck"

	DefaultTaskQueue = "machineflow"

	// HealthCheckScheduleID is the Temporal Schedule running ClusterHealthCheck.
	HealthCheckScheduleID = "cluster-health-check"

	// StatusQuery is the query every lifecycle workflow answers with its Progress.
	StatusQuery = "status"
)

// ProvisionInput starts ProvisionMachine. It is JSON so that
// `temporal workflow start --type ProvisionMachine --input '{"namespace":"default","name":"vm1"}'`
// works as-is.
type ProvisionInput struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// KubevirtConfig, when set, places the Machine on that cluster.
	KubevirtConfig string `json:"kubevirtConfig,omitempty"`
	// BootTimeout bounds the wait for the VM to run, as a Go duration
	// ("15m"); empty means the default.
	BootTimeout string `json:"bootTimeout,omitempty"`
}

// ProvisionResult names where the Machine runs and how to reach it.
type ProvisionResult struct {
	KubevirtConfig string   `json:"kubevirtConfig"`
	VMNamespace    string   `json:"vmNamespace"`
	VMName         string   `json:"vmName"`
	IPAddresses    []string `json:"ipAddresses,omitempty"`
	IPv6Addresses  []string `json:"ipv6Addresses,omitempty"`
}

// DeprovisionInput starts DeprovisionMachine. Force gives up on remote
// cleanup when the cluster cannot be reached, reporting what was left.
type DeprovisionInput struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Force     bool   `json:"force,omitempty"`
}

// DeprovisionResult reports what was deleted and, after a forced give-up,
// what could not be.
type DeprovisionResult struct {
	KubevirtConfig string   `json:"kubevirtConfig,omitempty"`
	Deleted        []string `json:"deleted,omitempty"`
	NotDeleted     []string `json:"notDeleted,omitempty"`
	Forced         bool     `json:"forced,omitempty"`
}

// HealthReport is ClusterHealthCheck's result, one entry per KubevirtConfig
// in name order.
type HealthReport struct {
	Clusters []contract.ClusterHealth `json:"clusters"`
}

// Progress is what the status query returns.
type Progress struct {
	Step      string         `json:"step"`
	Attempts  map[string]int `json:"attempts,omitempty"`
	LastError string         `json:"lastError,omitempty"`
	StartedAt time.Time      `json:"startedAt"`
	Done      bool           `json:"done"`
}
