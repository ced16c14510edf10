// Package testutil holds the few helpers that tests of several packages
// share: a free loopback address for a server a test starts, a buffer
// that captures a child process's output while the test reads it, the
// decoding of a captured JSON log, a black-hole listener that accepts
// connections and never answers, and the check that a VM's cloud-init is
// in a Secret rather than in the VM. It is for tests only; no production code
// imports it.
package testutil
