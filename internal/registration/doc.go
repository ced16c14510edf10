// Package registration makes sure the vitistack MachineProvider of a
// machineflow worker exists on the supervisor, as the vitistack
// kubevirt-operator did at start-up: nothing happens when the
// Vitistack named by VITISTACK_NAME lists NAME_MACHINE_PROVIDER in
// spec.machineProviders or a MachineProvider of that name exists;
// otherwise one is created from the KubevirtConfig of the same name
// (providerType kubevirt, the Vitistack's spec.region, credentials
// pointing at the kubeconfig Secret, never its content).
//
// Why it is shaped this way:
//
//   - It runs in the background (internal/background), started by fx's
//     OnStart and stopped by OnStop, and never fails start-up or
//     readiness, where the kubevirt-operator exited on any failure here:
//     a missing MachineProvider stops no Machine from being provisioned,
//     so the worker serves while registration retries.
//   - Failures are logged with their reason and retried with a doubling
//     backoff, at most DefaultMaxAttempts times: a missing KubevirtConfig or
//     Vitistack, or RBAC being applied, may be fixed while the worker
//     runs, but a worker does not retry a misconfiguration forever. A
//     request the API server rejects as invalid is not retried.
//   - VITISTACK_NAME is optional. Without it (or when the Vitistack has
//     no region) the region is UnknownRegion, because the MachineProvider
//     CRD requires one.
//   - Every replica runs it: creation is idempotent (AlreadyExists counts
//     as registered) and an existing MachineProvider is never modified,
//     whoever made it.
//   - cmd/worker composes Module with the real supervisor only: mock mode
//     has no supervisor to register on.
package registration
