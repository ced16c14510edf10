// Package controller connects Kubernetes controllers to machineflow's
// lifecycle workflows: Trigger is the small interface any
// controller-runtime reconciler can hold (TemporalTrigger for real,
// MockTrigger in unit tests), and MachineReconciler is the Machine
// controller that cmd/controller runs.
//
// Why it is shaped this way:
//
//   - The workflow IDs are the lock. A Trigger describes the workflow
//     before starting it and starts through workflows.Starter
//     (USE_EXISTING while a run is open), so any number of calls, replicas
//     or restarts make one run per Machine at a time.
//   - What a Trigger needs to decide about the next run lives in the memo
//     of the last one (Machine UID, generation, attempt, force), not in the
//     controller: the decision survives restarts and needs no Kubernetes
//     write. The UID tells a Machine re-created under the same name from
//     the one the last run was for.
//   - "Ensure provisioned" means: a run exists for this Machine and did not
//     fail. A completed run stands whatever the generation (VMs are not
//     updated; the SpecApplied condition and an Event say so). A failed run
//     stays failed, with no restart in a loop, until the Machine's
//     generation changes (the spec was fixed) or the retry backoff after
//     its close time has elapsed (TemporalTriggerOptions.RetryBackoff,
//     doubling per attempt, capped). The same holds for a failed
//     deprovision, which force restarts at once.
//   - The reconciler does not poll. Workflows write the Machine's status
//     themselves; a reconcile runs when the Machine's generation,
//     deletion, finalizers, names.ForceDeprovisionAnnotation or the ISO
//     annotations change (MachinePredicate lets no status-only update
//     through), when a run it reported open closes, and on its own
//     requeues: while a run is open, after as long as the run has been
//     running (a doubling interval kept without state, within RequeueMin
//     and RequeueMax), and for a failed run at its retry time. A Machine
//     whose provision completed is never requeued.
//   - The controller waits for an open run's close instead of finding it
//     at the next requeue, which came up to as long again as the run had
//     lasted (a deleted Machine stayed seconds to minutes after its
//     DeprovisionMachine completed). After a reconcile that reports an
//     open run, one goroutine per Machine (runWaiters) blocks in
//     Trigger.AwaitClose, for Temporal a long poll for the run's close
//     event, and adds the Machine to the controller's queue (a
//     source.Func watch) the moment the run closes. A waiter lasts until
//     the Machine's requeue and a RequeueMin more, so each requeue
//     renews it and a Machine forgotten by the controller is not awaited
//     for long; the requeue stays as the safety net, so correctness never
//     depends on a waiter (none while the manager is not running, beyond
//     MaxRunWaiters, or after an error). Closed runs have no waiter: a
//     Machine at rest costs nothing. Waiters run with the manager (a
//     runnable elected with the controller), end when it stops, and are
//     counted in the machineflow_controller_run_waiters gauge.
//     MaxRunWaiters (500) bounds the long polls, each a stream on the
//     Temporal client's connection: a proxy that caps HTTP/2 streams per
//     connection (nginx: 128) would make the controller's other calls
//     queue behind them, so set it below such a cap. The workflows do not
//     remove the finalizer themselves: it is the controller's, released
//     only by a reconcile that saw the deprovision complete.
//   - Events follow condition changes. The reconciler writes its
//     LifecycleWorkflow condition (which names the run) and SpecApplied with
//     one status patch guarded by the resourceVersion, and emits an Event
//     per condition that changed: an Event means a transition, also across
//     controller restarts.
//   - A run that retries a failing step says so while it retries: the
//     Trigger reads the last failure of the pending activity from the
//     describe it makes anyway, and the condition becomes ProvisionRetrying
//     (DeprovisionRetrying, EjectISORetrying) with the step, error type and
//     message. Without it a Machine whose cluster is unreachable would show
//     only "running" for the minutes until the step's ScheduleToClose. A
//     Warning Event announces the first failure; new wordings of it and
//     the step's recovery are not announced again.
//   - A Running Machine booted from an ISO gets its ISO removed once
//     someone annotates it vitistack.io/cdrom-ejected or
//     vitistack.io/os-installed "true": the reconciler ensures an EjectISO
//     run (Trigger.EnsureISOEjected, ID eject-iso/<namespace>/<name>)
//     while those annotations are set and vitistack.io/iso-cleaned-up is
//     not, and reports it in the ISOEjected condition (an Event when it
//     starts, completes or fails). The predicate passes changes to these
//     annotations. The run writes iso-cleaned-up before it completes, so
//     the reconciler also follows a run its condition shows open until it
//     ends; a failed run is retried after the backoff like a provision.
//     The operator did this cleanup inside every 5 s reconcile and only
//     logged its errors.
//   - The finalizer goes on first, in a reconcile of its own, before any
//     workflow can create anything; it comes off only after a
//     DeprovisionMachine run for this Machine completed. A Machine whose
//     provider changed after it got the finalizer is still deprovisioned
//     when deleted.
package controller
