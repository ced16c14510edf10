// Package layout holds tests of the repository's shape: which packages the
// production binaries and the workflows may link. The folders say who a
// package is for (internal/ ships, internal/harness/ only tests, make run
// and make bench, internal/sim/ simulates KubeVirt); these tests keep the
// folders honest, because a stray import would otherwise go unnoticed
// until a test helper ships in the worker.
package layout
