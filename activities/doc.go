// Package activities does all the I/O of a Machine's lifecycle: placement,
// validation, the objects on the KubeVirt cluster and the supervisor, the
// wait for boot, status, deletion and cluster health. Workflows decide the
// order; each activity is one idempotent step.
//
// Why it is shaped this way:
//
//   - One struct, Activities, with its dependencies injected (New): the
//     worker registers it once and every exported method is an activity
//     named after itself (the *Name constants in types.go; a test keeps the
//     two lists equal). Inputs and results are small, secret-free values:
//     Temporal history is readable by anyone with UI access. Cloud-init
//     payloads and the image URL (spec.os.imageID, which may hold a password
//     or a signed query) are read from the supervisor inside
//     EnsureVirtualMachine and go into the VM spec only: the plan says just
//     whether and how the VM boots from an image. Kubeconfigs never leave
//     the ClientManager.
//   - Create-or-adopt (ensureObject): an Ensure* activity creates what is
//     missing and adopts what it created before, so retries and replays are
//     harmless. An object of the same name without our managed-by label is a
//     final ObjectConflict: machineflow never overwrites someone else's
//     object. Namespaces are the exception (they are shared and never
//     deleted). Adopted objects are never updated, like the operator did.
//   - Validation before creation: LoadMachine checks everything that can be
//     wrong in a Machine (class, disks, network, boot source, cloud-init
//     references) and names the exact field, so an invalid Machine fails
//     before anything exists. It also refuses what the API server would
//     accept but no VM can use: a name longer than a label value (63
//     characters; it is the value of vitistack.io/source-machine on every
//     object), a MachineClass beyond the Machine's own CPU bounds or below
//     1Mi of memory, a VLAN id above 4094. FuzzBuildVirtualMachine holds
//     planMachine and buildVirtualMachine to that. Missing cloud-init sources and static IPs are
//     retryable waits (WaitingForDependency), as the operator requeued.
//   - One place classifies errors (classify): the clients package's
//     sentinels and API/transport errors become Temporal application errors
//     whose type says whether retrying can help.
//   - Pure functions hold the decisions worth table-testing: planMachine
//     (spec → MachinePlan), buildVirtualMachine (the operator's VM shape),
//     observe/vmPhase/bootFailure (VM and VMI → vitistack phase) and
//     mergeStatus (typed, de-duplicated conditions; writes only on change).
//   - Waiting happens inside one heartbeating activity with backoff
//     (WaitForVirtualMachine, DeleteVirtualMachine) rather than as timers in
//     workflow history, so history does not grow with boot time; the boot
//     deadline is the workflow's ScheduleToClose.
//   - CleanupISO ports the operator's ISO cleanup (reference §2 "ISO
//     cleanup"): once a Machine is annotated vitistack.io/cdrom-ejected or
//     vitistack.io/os-installed, the ISO goes from the VM by a JSON patch
//     whose test operations guard every removal, so a VM changed since it
//     was read fails the patch (and is read again) instead of losing the
//     wrong entry, and fields unknown to this module's KubeVirt types
//     survive; a merge patch would rewrite the whole disk and volume
//     lists. Its DataVolume and claim are deleted when ours, then the
//     Machine is annotated vitistack.io/iso-cleaned-up. Unlike the
//     operator, errors are returned (and retried by EjectISO), not only
//     logged.
//   - Deletion follows the safe order of the issue (VM, then volumes, then
//     NADs no VM uses, then the NetworkConfiguration) and only touches
//     objects labelled as ours. NADs are shared per VLAN: the last Machine
//     out removes them.
//
// Deliberate differences from the kubevirt-operator: the phase mapping uses
// vitistack phases (Stopped, Stopping, Terminating) instead of "Succeeded";
// ErrorUnschedulable counts as a boot failure; untagged bridge NADs carry no
// "vlan" key (the operator wrote -1); spec.cloudInit.type configDrive is
// rejected instead of silently ignored; a Machine may have at most one boot
// disk; status.providerID is kubevirt://<config>/<namespace>/<name>.
package activities
