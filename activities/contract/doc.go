// Package contract is what workflows and activities agree on: activity
// names, the types of their inputs and results, and the application error
// types that say whether a failure is final.
//
// It is a leaf: it imports neither client-go nor controller-runtime, so a
// workflow, which imports this package and never the activities, cannot
// reach a Kubernetes client by construction. Everything here travels
// through Temporal history, which anyone with UI access can read: the types
// hold references and small values only, never Secret data, kubeconfigs or
// cloud-init payloads. Field names and JSON tags are part of recorded
// histories; change them only behind workflow versioning.
package contract
