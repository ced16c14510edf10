// Package runner is `make run`: one process that starts machineflow's local
// sandbox in order, shows every process's output prefixed with its name,
// and stops it all on Ctrl-C.
//
// Why it is Go and not a shell script: stopping cleanly is the hard part.
// Each child runs in its own process group, so the terminal's Ctrl-C reaches
// only the runner, which stops the children in reverse start order (the
// controller stops starting workflows before the worker goes, the worker
// before the clusters and Temporal it talks to), each with SIGTERM and a
// grace period, then SIGKILL. Before signalling a child the runner lists its
// descendants in /proc; anything still alive after the child exited (an
// etcd of a crashed sandbox) is killed and reported as an error. On Linux
// the children also get a parent-death signal, so even a runner killed with
// SIGKILL leaves nothing running. That handling of one child is package
// childproc; Temporal, the worker and the controller are started through
// devtemporal and services, as the out-of-process suites start them.
//
// Start order and readiness: the Temporal dev server (ready when a client
// connects; its SQLite file in the run directory keeps workflow history
// across restarts; devtemporal.Args's --search-attribute flags register
// machineflow's search attributes, idempotently), the sandbox (ready when it has written
// supervisor.kubeconfig; its API servers keep their etcd data in the run
// directory's clusters/, so Machines and VMs survive a restart too), the
// worker (which registers its MachineProvider in the sandbox's Vitistack,
// SandboxVitistack) and the controller with that kubeconfig, `starter schedule
// health-check --every 5m` (an upsert), then the example manifests, applied
// server-side (a restart applies them again without changing what they
// describe). If any long-running process exits, the runner stops the rest
// and fails: a half-running sandbox would only mislead.
package runner
