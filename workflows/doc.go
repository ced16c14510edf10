// Package workflows holds the durable side of machineflow: ProvisionMachine,
// DeprovisionMachine, ClusterHealthCheck and EjectISO, their activity
// options, their IDs, and the Starter that the starter CLI and the
// controller use.
//
// Workflows schedule activities by the names in activities/contract, never
// by method value, and import nothing that can reach a cluster: a workflow
// cannot do I/O outside an activity by construction (test/layout checks
// the imports), the package is tested without Kubernetes, and workflows and
// activities may run in different processes. The tests register fakes
// under the same names.
//
// Every activity has a StartToClose bound and a retry policy that stops at
// ScheduleToClose or a maximum of attempts, with the contract's final error
// types, so nothing retries forever (activityPolicies in options.go is the
// table). Waiting for a VM is one heartbeating activity, not a loop of
// timers, so history does not grow with boot time; its ScheduleToClose is
// the boot deadline.
//
// A provision remembers what it created, as opposed to adopted, and on a
// final failure or a cancellation compensates exactly that, VM first, in a
// disconnected context; the Ensure steps run disconnected too, so a
// cancellation never loses a step's result. A deprovision first cancels an
// open provision of the same Machine and waits for it to close
// (AwaitWorkflowClosed, a Temporal control activity of this package), so
// compensation and deletes never race. Progress (the step, the last error,
// executions per activity) is a query; the search attributes
// MachineNamespace, MachineName, KubevirtConfig and MachinePhase make runs
// findable in the UI.
//
// # Changing workflow code
//
// A worker replays the history of every open run on the current code, so
// any change to the commands a run makes (which activities, timers,
// upserts or cancellations, and in which order) goes behind a version
// marker:
//
//	v := workflow.GetVersion(ctx, "wait-before-network", workflow.DefaultVersion, 1)
//	if v == 1 {
//	    // new behaviour
//	}
//
// Old runs replay DefaultVersion, new runs record 1; remove the old branch
// once no run of the old version is open (search by
// TemporalChangeVersion). Activity implementations, options, logging and
// optional input fields need no version. TestReplay replays every history
// in testdata with worker.WorkflowReplayer, so an unversioned change fails
// the tests. The histories are real runs recorded by TestRecordHistories
// (`make histories`); keep old files under a new name while runs of their
// version may be open.
package workflows
