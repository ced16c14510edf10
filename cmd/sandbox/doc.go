// Command sandbox runs machineflow's local stand-in for real infrastructure:
// a supervisor API server and N KubeVirt API servers from internal/harness/testenv,
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
// With -data-dir (cmd/run passes <run dir>/clusters) each API server's
// etcd keeps its data in <data-dir>/<cluster>, so a restart finds the
// Machines, VMs and KubevirtConfigs of the last run, as Temporal finds its
// history: the seed is applied server-side (no change the second time),
// set-up that exists is kept, and only ports, certificates and therefore
// the kubeconfig files and Secrets are new. The simulators re-read the VMs'
// addresses from VMI status. Without it every start is a fresh set of
// clusters in temporary directories. SIGINT or SIGTERM stops the
// simulators, then the API servers, and removes the kubeconfigs.
package main
