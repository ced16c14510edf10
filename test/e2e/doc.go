// Package e2e is machineflow's end-to-end suite: everything real except
// the hardware. A Temporal dev server (internal/harness/devtemporal), a supervisor
// and two KubeVirt API servers (internal/harness/testenv) with one simulator each
// (internal/sim/kubevirtsim), the worker as the real binary built from
// cmd/worker, and the starter binary from cmd/starter driving it, the way
// an operator would.
//
// Why it is shaped this way:
//
//   - TestMain builds both binaries while the servers start, and everything
//     is shared by the tests: starting it is most of the suite's wall time.
//     Each test works in its own supervisor namespace, so tests do not see
//     each other's Machines, and tests run one after the other (two CPUs).
//   - The worker is a child process configured only through its
//     environment, as in a Deployment; its log goes to a file that a
//     failing test prints. Stopping it with SIGTERM mid-provisioning and
//     starting it again is one of the scenarios.
//   - Assertions read the API servers and Temporal directly, never the
//     starter's own claims alone.
//
// The suite is skipped with -short: it needs ./bin (make tools).
package e2e
