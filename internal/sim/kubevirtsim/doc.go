// Package kubevirtsim plays KubeVirt's virt-controller and virt-handler on an
// API server that only has the KubeVirt CRDs (the test harness, `make run`),
// so the whole machine lifecycle runs without hardware virtualisation.
//
// It polls with List through any controller-runtime client.Client instead of
// running informers: it then works against a plain client built from a
// kubeconfig, needs no cache sync or RBAC for watches, and a poll interval of
// a few hundred milliseconds is far below any boot time the code under test
// waits for. Each poll writes only what changed. Its client must act as
// virt-controller's service account: KubeVirt's admission keeps a VMI's
// status (a VMI has no status subresource) unless KubeVirt writes it.
//
// Simulated, per VirtualMachine:
//   - run strategies Always, RerunOnFailure and Once (or running: true)
//     create the VMI from spec.template (labels, annotations, spec, a
//     controller ownerRef); Halted (or running: false, or neither set) deletes
//     it; a Failed VMI is replaced under Always and RerunOnFailure;
//   - the VMI moves Pending → Scheduling → Scheduled → Running over the boot
//     delay, with node name, PodScheduled/Ready/AgentConnected conditions,
//     phase transition timestamps, and when Running one address per spec
//     interface (or one "default" interface) from the cluster's pool, the
//     MAC from the spec or a stable generated one, and volume status with
//     guest device names and PVC details;
//   - VM status: created, ready, printableStatus, a Ready condition that
//     mirrors the VMI's, startFailure under CrashLoopBackOff;
//   - deletion as on KubeVirt: VMs carry the virt-controller finalizer and
//     VMIs the foreground-delete finalizer, so a deleted VM lingers
//     (Terminating) until its VMI has terminated (TerminationDelay) and is
//     gone; callers must wait for both, as on a real cluster. VMIs whose VM is
//     gone are deleted, standing in for the garbage collector;
//   - failure injection through annotations (FailureAnnotation,
//     BootDelayAnnotation, NeverReadyAnnotation), read on every poll; an
//     invalid value keeps the VM from starting and is reported in a Failure
//     condition on the VM.
//
// Addresses are stable while a VM exists (also across VMI restarts and a
// simulator restart, which re-reads them from VMI status) and are not handed
// out again until the pool has cycled.
//
// Not simulated: pods, virt-launcher, Events, DataVolume import and PVC
// binding (CDI), live migration, pause, the start/stop/restart subresources
// (so Manual and WaitAsReceiver VMs are left alone), VMIs created without a
// VM, guest OS information, and KubeVirt's validating and defaulting
// webhooks.
package kubevirtsim
