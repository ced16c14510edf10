// Package testutil holds the few helpers that tests of several packages
// share: a free loopback address for a server a test starts, a buffer
// that captures a child process's output while the test reads it, the
// decoding of a captured JSON log, and a black-hole listener that accepts
// connections and never answers. It is for tests only; no production code
// imports it.
package testutil
