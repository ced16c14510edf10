// Package sandbox holds the smoke test of `make run`: it builds the
// binaries, runs bin/run headless on free ports with one example Machine,
// waits for that Machine to be Running, interrupts the runner like a
// Ctrl-C, and checks that it exits 0 and that every process it started
// (Temporal, the sandbox's etcds and API servers, the worker, the
// controller) is gone. A second run on the same directory, applying the
// same example again, proves that Temporal's history and the clusters'
// objects survive a restart: the same Machine, still Running, its VM and
// KubevirtConfig, and no second provisioning. Skipped with -short.
package sandbox
