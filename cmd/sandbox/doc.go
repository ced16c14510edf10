// Command sandbox runs machineflow's local stand-in for real infrastructure:
// a supervisor API server and N KubeVirt API servers from internal/testenv,
// one KubeVirt simulator per cluster, example MachineClasses and
// NetworkNamespaces (seed.yaml), and the KubevirtConfigs with their
// kubeconfig Secrets. `make run` starts it through cmd/run; it also runs on
// its own.
//
// Its contract with whoever starts it is a file: <dir>/supervisor.kubeconfig
// appears (atomically, by rename) only once everything is up, and disappears
// when the sandbox stops, so its presence means "ready" and no reader ever
// sees a half-written or stale file. The other kubeconfigs written next to
// it follow the same rule: admin.kubeconfig (the harness's own admin, for
// kubectl) and <cluster>.kubeconfig per KubeVirt cluster.
//
// Every start is a fresh set of clusters: internal/testenv gives each API
// server a temporary etcd and new certificates, and has no option to keep
// etcd data, so Machines do not survive a restart (Temporal's history does,
// see cmd/run). SIGINT or SIGTERM stops the simulators, then the API
// servers, and removes the kubeconfigs.
package main
