// Package stack runs the whole of machineflow out of process for the suites
// that treat it as operators would: a Temporal dev server
// (internal/harness/devtemporal), a supervisor and KubeVirt API servers
// (internal/harness/testenv) with one simulator each (internal/sim/kubevirtsim), and
// the worker and controller as the real binaries, built from cmd/ once per
// test binary and configured only through their environment.
//
// It exists so that the end-to-end, reliability and scale suites share one
// set-up and can do what only separate processes allow: kill a worker with
// SIGKILL at a chosen moment and start it again, run several workers on one
// task queue, restart the controller, or restart Temporal on the same port
// and database file while workflows are open.
//
// A Gate (gate.go) is an API server proxy that holds the requests a test
// picks: a worker whose kubeconfig points at one can be killed inside a
// chosen request of a chosen activity, and the request, released
// afterwards, lands on the API server with its caller gone. Workers get
// such a kubeconfig through AddWorkerWithEnv.
//
// Every listener is on a port chosen once, when its services.Service is made, so a
// restarted process is found where it was. Logs are JSON lines in Dir, one
// file per process, appended across restarts; LogTails is what a failing
// test prints.
package stack
