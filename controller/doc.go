// Package controller connects Kubernetes controllers to machineflow's
// lifecycle workflows: Trigger is the small interface any
// controller-runtime reconciler can hold (TemporalTrigger for real,
// MockTrigger in unit tests), and MachineReconciler is the Machine
// controller that cmd/controller runs. What to do next is decided by the
// pure functions of controller/decide; this package reads Temporal and
// the Machine, carries the decision out and reports it.
//
// Why it is shaped this way:
//
//   - The workflow IDs are the lock. A Trigger describes the workflow
//     before starting it and starts through workflows.Starter
//     (USE_EXISTING while a run is open), so any number of calls, replicas
//     or restarts make one run per Machine at a time.
//   - What decides the next run lives in the memo of the last one
//     (Machine UID, generation, attempt, force), not in the controller: it
//     survives restarts and needs no Kubernetes write. The UID tells a
//     Machine re-created under the same name from the one the run was for.
//   - A failed run stays failed, with no restart in a loop, until the
//     Machine's generation changes or its retry backoff has elapsed; a
//     completed provision stands whatever the generation, and the
//     SpecApplied condition says whether it is the current one.
//   - The reconciler does not poll. Workflows write the Machine's status
//     themselves; a reconcile runs when what the predicate lets through
//     changes (never a status-only update), when a run it saw open
//     closes, and on requeues that back off with the run's age. A Machine
//     whose provision completed is never requeued.
//   - An open run is awaited, not rediscovered: one goroutine per Machine
//     (runWaiters) long-polls Temporal for the run's close and queues the
//     Machine at once. Waiters are bounded (MaxRunWaiters: each is a
//     stream on the client's connection) and expire with the requeue that
//     renews them, so correctness never depends on one.
//   - Events follow condition changes: conditions name the run and are
//     written in one status patch guarded by the resourceVersion, so an
//     Event means a transition, also across controller restarts. A run
//     retrying a failing step says so (the Retrying reasons) from the
//     describe the Trigger makes anyway, and is announced once.
//   - The finalizer goes on first, in a reconcile of its own, before any
//     workflow can create anything; it comes off only after a
//     DeprovisionMachine run for this Machine completed. The workflows
//     never remove it.
//
// The conditions, reasons, Events and settings are listed in the README's
// Controller section.
package controller
