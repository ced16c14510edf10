// Package activities does all the I/O of a Machine's lifecycle: placement,
// validation, the objects on the KubeVirt cluster and the supervisor, the
// wait for boot, status, deletion, ISO cleanup and cluster health.
// Workflows decide the order; each activity is one idempotent step, and
// the decisions worth table-testing live in the pure packages it calls
// (internal/vmplan for plans and objects, internal/vmstatus for status).
//
// Why it is shaped this way:
//
//   - One struct, Activities, with its dependencies injected (New): the
//     worker registers it once and every exported method is an activity
//     named after itself (the *Name constants of activities/contract; a
//     test keeps the two lists equal). Inputs and results are small,
//     secret-free values, because Temporal history is readable by anyone
//     with UI access: cloud-init payloads and the image URL (which may hold
//     a password or a signed query) are read inside EnsureVirtualMachine,
//     the payloads into the VM's cloud-init Secret on the KubeVirt cluster
//     and the URL into the VM spec only. Kubeconfigs never leave the
//     ClientManager.
//   - Create-or-adopt (ensureObject): an Ensure activity creates what is
//     missing and adopts what it created before, so retries and replays are
//     harmless. An object of the same name without our managed-by label is
//     a final ObjectConflict: machineflow never overwrites someone else's
//     object. Namespaces are shared and never deleted.
//   - Validation before creation: LoadMachine reads the Machine, its class
//     and NetworkNamespace and lets the planner refuse everything that can
//     be wrong, naming the field, before anything exists. Missing
//     cloud-init sources and static IPs are retryable waits.
//   - One place classifies errors (classify, fromPlan): the clients
//     package's sentinels, the planner's refusals and API or transport
//     errors become Temporal application errors whose type says whether
//     retrying can help.
//   - Waiting happens inside one heartbeating activity with backoff
//     (WaitForVirtualMachine, DeleteVirtualMachine) rather than as timers in
//     workflow history, so history does not grow with boot time.
//   - CleanupISO removes an installation ISO by a JSON patch whose test
//     operations guard every removal: a VM changed since it was read fails
//     the patch and is read again, and fields unknown to our KubeVirt types
//     survive, which a merge patch of the disk list would not allow.
//   - Deletion goes VM (with its cloud-init Secret), volumes, NADs no VM
//     uses, NetworkConfiguration, and touches only objects labelled as ours.
package activities
