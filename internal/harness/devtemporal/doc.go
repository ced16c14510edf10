// Package devtemporal starts the Temporal CLI's dev server (`temporal server
// start-dev`, built into ./bin by `make tools`) with machineflow's search
// attributes registered. Tests, `make histories`, `make run` (its Args) and
// the e2e suite use it, so each of them talks to a real Temporal server
// rather than the in-process test environment.
//
// Why not the SDK's testsuite.StartDevServer: it starts the server without
// a parent-death signal, leaves it running when the readiness wait fails,
// and its Stop waits for the exit without a limit, so a test binary that
// was killed or timed out left a temporal process behind. Here the server
// is a childproc.Process (own process group, parent-death signal, bounded
// Stop that also kills what it left), and a failed start stops it.
package devtemporal
