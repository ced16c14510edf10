// Package childproc supervises one child process so that it cannot outlive
// its parent: it runs in its own process group (a terminal's Ctrl-C reaches
// only the parent, which stops its children in order), with a parent-death
// signal on Linux (a parent killed with SIGKILL takes it along), and Stop is
// bounded: SIGTERM, a grace period, then SIGKILL to the whole group, and
// whatever the child started and left behind is found in /proc, killed and
// reported.
//
// It is a package of its own, depending on the standard library only,
// because both `make run` (internal/harness/runner) and the Temporal dev server of
// the tests (internal/harness/devtemporal) start children this way, and the runner
// itself starts a dev server.
package childproc
