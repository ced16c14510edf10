// Package services starts machineflow's own long-running processes, the
// worker and the controller, from their binaries, for `make run` and for the
// suites that run the stack out of process.
//
// Both callers need the same things: the listeners on ports picked once (so
// that a restarted process is found where it was), set through the same
// variables a Deployment sets, and a start that returns only once /readyz
// answers 200 or fails with the process's last output. Keeping that in one
// place means `make run` and the tests start the binaries the same way, and
// a new setting or probe reaches both.
package services
