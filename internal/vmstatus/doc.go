// Package vmstatus maps what a KubeVirt cluster shows of a Machine's VM and
// VMI to vitistack's vocabulary (phase, state, addresses, interfaces,
// disks, boot failures), and merges such an observation into a Machine's
// status.
//
// It does no I/O, so the provision's wait, the health of a running VM and
// any future watcher share one mapping that is tested without a cluster.
// Merge is written so that an identical update changes nothing: conditions
// are unique by type, a condition's transition time moves only when its
// status does, and lastUpdated moves only with a real change, which lets
// callers skip writes that would change nothing.
//
// Differences from the vitistack kubevirt-operator, on purpose: phases are
// vitistack's (Stopped, Stopping, Terminating) instead of "Succeeded";
// ErrorUnschedulable counts as a boot failure; status.providerID is
// kubevirt://<config>/<namespace>/<name>.
package vmstatus
