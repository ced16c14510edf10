// Package workflows holds the durable side of machineflow: ProvisionMachine,
// DeprovisionMachine, ClusterHealthCheck and EjectISO, their activity
// options, their IDs, and the Starter that the starter CLI and the
// controller use.
//
// # Activities by name
//
// Workflows schedule activities by the names in activities/types.go
// (workflow.ExecuteActivity(ctx, contract.EnsureVolumesName, input)),
// never by method value. The package therefore depends only on the
// contract types, not on the activities' clients, so it compiles and is
// tested without Kubernetes, and a worker may run workflows and activities
// in different processes. The tests register fakes under the same names.
//
// # Activity options
//
// Every activity has a StartToClose bound and a retry policy with
// contract.NonRetryableErrorTypes; retries stop at ScheduleToClose (or a
// maximum of attempts), so nothing retries forever. The table lives in
// options.go (activityPolicies):
//
//	activity                     StartToClose  ScheduleToClose  Heartbeat  max interval
//	ResolvePlacement             30s           5m               -          30s
//	ValidateCluster              30s           5m               -          30s
//	LoadMachine                  30s           10m              -          1m   (waits for cloud-init refs)
//	EnsureNamespace              30s           5m               -          30s
//	EnsureVolumes/Network/VM     1m            10m              -          1m
//	WaitForVirtualMachine        boot          boot             30s        30s  (boot = bootTimeout, 15m)
//	UpdateMachineStatus          30s           5m               -          30s
//	LookupPlacement              30s           5m               -          30s
//	DeleteVirtualMachine         5m            15m              30s        1m   (waits for VM and VMI to go)
//	DeleteVolumes/Network        1m            5m               -          1m
//	DeleteNetworkConfiguration   30s           5m               -          30s
//	CleanupISO                   1m            10m              -          1m
//	ListClusters                 30s           2m               -          30s
//	CheckCluster                 30s           1m               -          10s  (2 attempts)
//	RecordClusterHealth          30s           2m               -          30s
//	InvalidateClusterClient      10s           1m               -          10s  (3 attempts)
//	AwaitWorkflowClosed          1h            1h               30s        30s
//
// The boot deadline is the ScheduleToClose of WaitForVirtualMachine: a lost
// worker (heartbeat timeout) is retried within it, and a timeout that
// reaches the workflow is reported as BootDeadlineExceeded ("boot deadline
// exceeded"). The execution timeouts set by Starter exceed the sum of these
// bounds, so they never cut compensation short.
//
// # Provisioning and compensation
//
// ProvisionMachine runs ResolvePlacement, ValidateCluster, LoadMachine,
// EnsureNamespace, EnsureVolumes, EnsureNetwork, EnsureVirtualMachine and
// WaitForVirtualMachine, writing before each step phase Creating with the
// condition {Provisioning, True, <step>} (vitistack has no Provisioning
// phase), and finally phase Running with the observation. Activities write
// status only when it changed.
//
// The run remembers what it created, as opposed to adopted: the PVC names
// in VolumesResult.Created, NADCreated, NetworkConfigurationCreated and
// VirtualMachineResult.Created. The Ensure steps run in a disconnected
// context, so a cancellation that arrives while one is under way does not
// lose its result; it is acted on right after the step. When a step fails
// (a non-retryable error, or retries exhausted) or the run is cancelled,
// compensation runs in a disconnected context and deletes exactly those
// objects, VM first: DeleteVirtualMachine, DeleteVolumes with the created
// PVC names, DeleteNetwork, DeleteNetworkConfiguration. Then the Machine
// becomes Failed with Failure{Reason, Message} (the reason is the
// application error type) or, when cancelled, Pending without a failure.
// A failure before anything was created deletes nothing. A delete that
// fails is named in the failure message ("cleanup incomplete"); the
// objects carry machineflow's labels, and DeprovisionMachine removes them.
// An Ensure activity that fails half-way cannot report what it created;
// such objects are labelled too and are left to deprovisioning.
//
// # Progress, attempts and search attributes
//
// The status query returns Progress: the step, the last error and, per
// activity name, how many times the workflow scheduled it. We count
// executions scheduled by the workflow rather than server-side retries:
// retries inside one execution are invisible to workflow code until it
// ends, and while they last they show in `temporal workflow describe`
// (pendingActivities: attempt, lastFailure). Deprovision's retry rounds do
// show as attempts. The search attributes MachineNamespace and MachineName
// are set at start and upserted by the workflow (for runs started from the
// CLI), KubevirtConfig once placement is known, and MachinePhase whenever
// the phase changes; all four must be registered (Keyword) on the
// namespace.
//
// # History size
//
// Waiting for the VM is one heartbeating activity, not a loop of timers,
// so the history does not grow with boot time: a successful provision has
// 111 events whether the VM boots at once or after 3s of heartbeats
// (TestOnDevServer checks both are equal). Deprovision's retry rounds add a
// few events per round, bounded by RemoteCleanupDeadline.
//
// # Deprovisioning
//
// DeprovisionMachine first cancels an open ProvisionMachine of the same
// Machine (workflow.RequestCancelExternalWorkflow; "not found" means none
// is open) and waits until it has closed, so its compensation cannot race
// with the deletes. The wait is AwaitWorkflowClosed, a small activity of
// this package (ControlActivities) because it is Temporal control, not
// machine I/O: it describes the workflow with a growing interval (up to
// 5s) and heartbeats after every look. Polling Describe keeps the outcome
// simple (open or closed, NotFound means closed) where a long-polling
// GetWorkflow(...).Get would need every way a workflow can end told apart
// from transport errors. Register registers it with the workflows.
//
// Then LookupPlacement: a Machine that was never placed (or is gone) is
// done. Otherwise status Terminating, DeleteVirtualMachine, DeleteVolumes,
// DeleteNetwork (the KubeVirt cluster) and DeleteNetworkConfiguration (the
// supervisor). The placement annotation stays for audit. A failing remote
// step is retried in rounds with backoff (30s doubling to 5m) up to
// RemoteCleanupDeadline. With DeprovisionInput.Force, or after the "force"
// update, the first failure gives up on remote cleanup: what was not
// deleted is listed in DeprovisionResult.NotDeleted and the run succeeds.
// A force update also interrupts a remote delete in flight; with force the
// remote deletes make at most three attempts each.
//
// # Health check
//
// ClusterHealthCheck lists the KubevirtConfigs and runs check, then record
// and invalidate (when unhealthy) at once, per cluster in its own
// coroutine, so a slow cluster delays no other cluster's record. The
// report is sorted by name.
// InvalidateClusterClient drops the cache of the worker process that runs
// it only.
//
// # ISO ejection
//
// EjectISO (ID eject-iso/<namespace>/<name>) removes the installation ISO
// of a Machine booted from one, once someone has annotated it
// vitistack.io/cdrom-ejected or vitistack.io/os-installed "true" (the
// controller starts it for Running Machines). It is two steps:
// LookupPlacement (a Machine that is gone or was never placed has nothing
// to remove, and the run completes) and CleanupISO, which patches the
// cdrom-iso disk, its volume and the <vm>-iso DataVolumeTemplate out of
// the VM, deletes the ISO's DataVolume and claim, and annotates the
// Machine vitistack.io/iso-cleaned-up. CleanupISO is idempotent, so a
// second run, or a run for a Machine that is already clean, changes
// nothing. Nothing is compensated: removing the ISO is the end state, and
// a failure leaves the Machine without the annotation, so the controller
// retries with backoff. The operator ran the same cleanup inside every
// reconcile and only logged its errors; here each attempt is a run in
// history, and a failure is visible on the Machine.
//
// # Changing workflow code: GetVersion and replay histories
//
// A worker replays the history of every open run on the current code, so
// code that running workflows execute must make the same commands in the
// same order as when the history was written. Any change to the commands
// a run makes (which activities, timers, search attribute upserts or
// cancellations, and in which order) goes behind a version marker:
//
//	v := workflow.GetVersion(ctx, "wait-before-network", workflow.DefaultVersion, 1)
//	if v == 1 {
//	    // new behaviour
//	}
//
// Old runs replay DefaultVersion, new runs record 1. Remove the old branch
// once no run of the old version is open (search by the
// TemporalChangeVersion attribute). Changing activity implementations,
// activity options, logging, or adding optional input fields needs no
// version.
//
// TestReplay (replay_test.go) replays every testdata/*.json with
// worker.WorkflowReplayer, so a change that is not behind GetVersion fails
// the tests. The histories come from real runs, recorded by
// TestRecordHistories in record_test.go: the real workflows and activities
// on the Temporal dev server against the harness's API servers and the
// KubeVirt simulator. It is skipped unless MACHINEFLOW_RECORD_HISTORIES=1,
// which `make histories` sets. It writes testdata/ only once every path
// below has been recorded, refuses a history that carries kubeconfig
// material, and then replays what it wrote. One file per path:
//
//	testdata/provision-success.json                   provision that boots and runs
//	testdata/deprovision-provisioned.json             deprovision of that Machine
//	testdata/provision-boot-failure.json              boot failure, with compensation
//	testdata/provision-cancelled-mid-boot.json        cancelled while waiting for the boot
//	testdata/deprovision-never-provisioned.json       a Machine that was never placed
//	testdata/deprovision-cancels-open-provision.json  cancels the open provision first
//	testdata/deprovision-unreachable-forced.json      unreachable cluster, forced by the update
//	testdata/healthcheck-mixed.json                   one healthy and one unreachable cluster
//	testdata/ejectiso-success.json                    ISO ejected from a Running Machine booted from it
//
// Regenerate them with `make histories` after a deliberate, versioned
// change; files of other names are left alone, so keep the old ones (under
// a new name) as long as runs of that version may be open. Exporting by
// hand works as well:
// `temporal workflow show -w provision/default/vm1 --output json > testdata/provision-success.json`.
package workflows
