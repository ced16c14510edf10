// Package reliability is machineflow's reliability and security suite: the
// faults a Temporal-based provisioner must survive, the bad input it must
// refuse clearly, and a sweep proving that no secret the tests put in play
// reached a workflow history or a log. `make test-reliability` runs it.
//
// Everything runs out of process on one internal/harness/stack shared by the whole
// package (TestMain): a Temporal dev server on a database file, a
// supervisor and two KubeVirt API servers with their simulators, the
// worker and the controller as the real binaries. Tests run one after the
// other, each in supervisor namespaces of its own, and leave the stack as
// they found it: one worker (Workers[0]) and the controller running, every
// cluster up, and no Machine of theirs left.
//
// # Writing a test here
//
// need(t) returns the shared *stack.Stack and skips the test under -short;
// a failing test logs the tails of every process's log. Create a namespace
// with s.Namespace (it gets a NetworkNamespace on stack.VLANID), Machines
// with stack.NewMachine, and assert what the supervisor, the clusters and
// Temporal show, never what a process claims.
//
// rememberSecret(what, value) registers every secret a test puts in play:
// cloud-init payloads, tokens, passwords, kubeconfigs (good or bad) written
// to Secrets. what names it in a report ("cloud-init of badinput/vm-3");
// the value itself is never printed. A kubeconfig's client key,
// certificate and token are registered with it. TestMain registers the
// supervisor's and the clusters' own credentials. Values shorter than
// secretscan.MinLen bytes cannot be told from ordinary text and are
// refused.
//
// # The secret sweep
//
// After every test has run, TestMain exports every workflow history of the
// dev server as JSON (all executions, open and closed), reads every log of
// the stack (workers, controller, simulators) and Temporal's database file,
// and fails the run if any registered value appears in one of them: as is,
// JSON-escaped, base64-encoded at any alignment (standard or URL
// alphabet), or as any line of 16 bytes or more of it (a PEM body line, a
// kubeconfig line). The report names the artefact and the secret, never
// the secret's content. The scan is internal/harness/secretscan, whose tests prove
// it finds each form; TestSweepReadsEveryArtefact and
// TestSweepFindsACanaryWorkflow prove the sweep reads the files and the
// histories.
//
// # Faults
//
// Each fault test ends by asserting the end state: every Machine Running
// (a fault here never justifies a failed Machine), exactly one VM per
// Running Machine across both clusters, one workflow run per Machine and
// workflow type (visibility), no workflow of the test left open, and after
// deletion no VM, VMI, PVC, NAD or NetworkConfiguration of the test left.
// The helpers for that are in faults_support_test.go (batch).
//
// The worker-kill test reaches each activity of ProvisionMachine and
// DeprovisionMachine deterministically through stack.Gate: the kill points
// are the activities the recorded main-path histories (workflows/testdata)
// schedule, one Machine each; the worker's supervisor and cluster requests
// pass through gates that release a Machine's requests one at a time
// until the one held is inside its kill point's activity (its first write,
// for activities that write); then one SIGKILL hits every Machine at its
// kill point. A killed activity waits for its StartToClose or heartbeat
// timeout (at most a minute) before its retry: one kill for all keeps the
// test near a minute and a half.
package reliability
