package reliability

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/controller"
	"github.com/machineflow/machineflow/internal/harness/freeport"
	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/harness/services"
	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/temporalclient"
	"github.com/machineflow/machineflow/internal/vmplan"
	"github.com/machineflow/machineflow/workflows"
)

// Bounds of the bad-input cases. badSettle is how long a case may take to
// reach its end state: a failure is final within seconds, a retried step
// shows its first failure within its StartToClose (30 s) plus the client's
// own retries.
const (
	badSettle = 3 * time.Minute
	// badActivityBound is the longest ScheduleToClose of the activities a
	// bad input can keep retrying (LoadMachine waits up to 10 minutes for
	// a cloud-init Secret).
	badActivityBound = 10 * time.Minute
)

// badOutcome is what a bad input must come to; exactly one field is set.
type badOutcome struct {
	// rejected: the supervisor's API server refuses the Machine at create
	// time (OpenAPI validation) with this in its message.
	rejected string
	// failed: the provision fails for good and the Machine is Failed with
	// this reason and message.
	failed *badFailure
	// retrying: a step fails with a retryable error and is retried within
	// its bounds; the Machine stays Creating and names the failure.
	retrying *badFailure
	// waiting is retrying for a dependency the test then supplies with
	// fix: the Machine then goes Running.
	waiting *badFailure
	fix     func(t *testing.T, ns string)
	// running: the input is fine after all; check, if set, looks at the
	// Machine's VM.
	running bool
	check   func(t *testing.T, st *stack.Stack, m *v1alpha1.Machine, vm *kubevirtv1.VirtualMachine)
}

// badFailure is an error type and a part of its message.
type badFailure struct {
	reason, message string
}

// badCase is one bad input: a Machine of its own namespace, placed on
// kubevirt-1 unless mutate places it elsewhere.
type badCase struct {
	name string
	// setup runs in the case's namespace before the Machine is created;
	// the cleanups it registers run after the Machine is gone.
	setup  func(t *testing.T, st *stack.Stack, ns string)
	mutate func(m *v1alpha1.Machine)
	want   badOutcome
	// force deletes the Machine with names.ForceDeprovisionAnnotation: it
	// is placed on a cluster that cannot be cleaned up.
	force bool
	// presetNetworkConfiguration: setup made the Machine's
	// NetworkConfiguration, so a failed provision rightly leaves it (it
	// compensates only what it created); deleting the Machine removes it.
	presetNetworkConfiguration bool
}

// badResult is a case's line in the report.
type badResult struct {
	name, outcome, message string
	runs                   int
	took                   time.Duration
}

// TestBadInput drives every bad input through the real controller,
// workflows and worker, one Machine per namespace, all at once. Each case
// must end as its outcome says, with a Machine status (or an API error)
// that names the problem; then the Machine is deleted, and nothing of it
// may be left on any cluster or the supervisor. No provision may be
// restarted sooner than the controller's retry backoff allows, no retried
// step may be unbounded, and the worker and the controller must still run
// at the end.
func TestBadInput(t *testing.T) {
	st := need(t)
	start := time.Now()
	cases := badCases(t, st)

	var mu sync.Mutex
	var results []badResult
	t.Run("case", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				r := badRun(t, st, c)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			})
		}
	})

	slices.SortFunc(results, func(a, b badResult) int { return strings.Compare(a.name, b.name) })
	var report strings.Builder
	for _, r := range results {
		fmt.Fprintf(&report, "  %-24s %-9s runs %d, %5.1fs  %s\n", r.name, r.outcome, r.runs, r.took.Seconds(), r.message)
	}
	t.Logf("%d bad inputs in %s:\n%s", len(cases), time.Since(start).Round(time.Second), report.String())
	for _, p := range []*services.Service{st.Workers[0], st.Controller} {
		assert.True(t, p.Running(), "%s crashed on bad input (exit code %d); log:\n%s", p.Name(), p.ExitCode(), services.Tail(p.LogPath(), 40))
	}
}

// badRun runs one case to its end state, deletes its Machine and checks
// what is left.
func badRun(t *testing.T, st *stack.Stack, c badCase) badResult {
	ctx := t.Context()
	sup := st.Env.Supervisor.Client
	ns := "bad-" + c.name
	require.NoError(t, st.Namespace(ctx, ns))
	if c.setup != nil {
		c.setup(t, st, ns)
	}
	m := stack.NewMachine(ns, "vm")
	m.Annotations[names.PlacementAnnotation] = st.Env.Clusters[0].Name
	if c.mutate != nil {
		c.mutate(m)
	}
	start := time.Now()
	res := badResult{name: c.name}
	err := sup.Create(ctx, m)
	if want := c.want.rejected; want != "" {
		require.Error(t, err, "the API server accepts the Machine")
		require.True(t, apierrors.IsInvalid(err), "not a validation error: %v", err)
		require.ErrorContains(t, err, want)
		res.outcome, res.message, res.took = "rejected", err.Error(), time.Since(start)
		return res
	}
	require.NoError(t, err)
	key := client.ObjectKeyFromObject(m)
	id := workflows.ProvisionWorkflowID(ns, m.Name)

	switch w := c.want; {
	case w.failed != nil:
		got := badWaitPhase(t, st, key, v1alpha1.MachinePhaseFailed)
		badRequireNamed(t, got, w.failed)
		res.outcome, res.message = "failed", deref(got.Status.FailureMessage)
	case w.retrying != nil, w.waiting != nil:
		want := w.retrying
		if w.waiting != nil {
			want = w.waiting
		}
		msg := badRequireRetried(t, st, id, want)
		badRequireReported(t, st, key, controller.ReasonProvisionRetrying, want)
		got := badMachine(t, st, key)
		assert.Equal(t, v1alpha1.MachinePhaseCreating, got.Status.Phase, "a retried step leaves the Machine Creating")
		badRequireLeftNothing(t, st, ns, m.Name, false)
		res.outcome, res.message = "retrying", msg
		if w.waiting != nil {
			w.fix(t, ns)
			badOnlyVM(t, st, badWaitPhase(t, st, key, v1alpha1.MachinePhaseRunning))
			res.outcome = "waited"
		}
	case w.running:
		got := badWaitPhase(t, st, key, v1alpha1.MachinePhaseRunning)
		vm := badOnlyVM(t, st, got)
		if w.check != nil {
			w.check(t, st, got, vm)
		}
		res.outcome = "running"
	default:
		t.Fatalf("case %s has no outcome", c.name)
	}
	res.took = time.Since(start)
	badRequireNoSecretIn(t, badMachine(t, st, key))
	if c.want.failed != nil {
		badRequireLeftNothing(t, st, ns, m.Name, c.presetNetworkConfiguration)
		badRequireReported(t, st, key, controller.ReasonProvisionFailed, c.want.failed)
	}

	res.runs = badRequireBackoff(t, st, id)
	badDelete(t, st, key, c.force)
	badRequireLeftNothing(t, st, ns, m.Name, false)
	assertNoOpenWorkflows(t, st, ns)
	return res
}

// badCases builds the cases; shared objects (the MachineClasses) are made
// here and removed when the test ends.
func badCases(t *testing.T, st *stack.Stack) []badCase {
	kubevirt1 := st.Env.Clusters[0]
	invalidSpec := func(message string) badOutcome {
		return badOutcome{failed: &badFailure{contract.ErrTypeInvalidSpec, message}}
	}
	onConfig := func(config string) func(m *v1alpha1.Machine) {
		return func(m *v1alpha1.Machine) { m.Annotations[names.PlacementAnnotation] = config }
	}
	disabled := badClass(t, st, "bad-disabled", 2, false)
	huge := badClass(t, st, "bad-huge-cpu", 100000, true)
	name63 := "n63-" + strings.Repeat("a", 59)
	name253 := strings.Repeat(strings.Repeat("b", 62)+".", 4) + "b"
	return []badCase{
		{name: "disk-negative", mutate: func(m *v1alpha1.Machine) { m.Spec.Disks[0].SizeGB = -1 },
			want: badOutcome{rejected: "spec.disks[0].sizeGB"}},
		{name: "disk-absurd", mutate: func(m *v1alpha1.Machine) { m.Spec.Disks[0].SizeGB = 1 << 40 },
			want: badOutcome{rejected: "spec.disks[0].sizeGB"}},
		{name: "disk-zero", mutate: func(m *v1alpha1.Machine) { m.Spec.Disks[0].SizeGB = 0 },
			want: invalidSpec("spec.disks[0].sizeGB: must be > 0 and <= 65536, got 0")},
		{name: "memory-negative", mutate: func(m *v1alpha1.Machine) { m.Spec.Memory = -1 },
			want: badOutcome{rejected: "spec.memory"}},
		{name: "memory-below-1mi", mutate: func(m *v1alpha1.Machine) { m.Spec.Memory = 1000 },
			want: invalidSpec("spec.memory: 1000 bytes is less than 1Mi")},
		{name: "cpu-absurd", mutate: func(m *v1alpha1.Machine) { m.Spec.CPU.Cores = 100000 },
			want: badOutcome{rejected: "spec.cpu.cores"}},
		{name: "class-unknown", mutate: func(m *v1alpha1.Machine) { m.Spec.MachineClass = "no-such-class" },
			want: invalidSpec(`spec.machineClass: MachineClass "no-such-class" not found`)},
		{name: "class-disabled", mutate: func(m *v1alpha1.Machine) { m.Spec.MachineClass = disabled },
			want: invalidSpec(`spec.machineClass: MachineClass "bad-disabled" is not enabled`)},
		{name: "class-absurd-cpu", mutate: func(m *v1alpha1.Machine) { m.Spec.MachineClass = huge },
			want: invalidSpec(`spec.machineClass: MachineClass "bad-huge-cpu" spec.cpu.cores: 100000 is out of range 0..256`)},
		{name: "netns-missing", mutate: func(m *v1alpha1.Machine) { m.Spec.Network.NetworkNamespaceName = "no-such-netns" },
			want: invalidSpec(`spec.network.networkNamespaceName: NetworkNamespace "no-such-netns" not found in namespace "bad-netns-missing"`)},
		{name: "netns-vlan-absurd", setup: func(t *testing.T, st *stack.Stack, ns string) { badNetworkNamespace(t, st, ns, "vlan5000", 5000) },
			mutate: func(m *v1alpha1.Machine) { m.Spec.Network.NetworkNamespaceName = "vlan5000" },
			want:   invalidSpec(`NetworkNamespace "vlan5000" status.vlanId 5000 is not a VLAN id (at most 4094)`)},
		{name: "cloudinit-secret-missing", mutate: badUserDataFrom("ci-userdata", ""),
			want: badOutcome{
				waiting: &badFailure{contract.ErrTypeWaiting, "spec.cloudInit.userDataSecretRef: Secret bad-cloudinit-secret-missing/ci-userdata does not exist yet"},
				fix: func(t *testing.T, ns string) {
					badCloudInitSecret(t, st, ns, "ci-userdata", "userdata")
				},
			}},
		{name: "cloudinit-key-missing", mutate: badUserDataFrom("ci-userdata", "user-data"),
			setup: func(t *testing.T, st *stack.Stack, ns string) {
				badCloudInitSecret(t, st, ns, "ci-userdata", "userdata")
			},
			want: badOutcome{
				waiting: &badFailure{contract.ErrTypeWaiting, `Secret bad-cloudinit-key-missing/ci-userdata has no key "user-data" yet`},
				fix: func(t *testing.T, ns string) {
					badCloudInitSecret(t, st, ns, "ci-userdata", "user-data")
				},
			}},
		{name: "name-63", mutate: func(m *v1alpha1.Machine) { m.Name = name63 },
			want: badOutcome{running: true, check: func(t *testing.T, st *stack.Stack, m *v1alpha1.Machine, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, name63, vm.Name)
				assert.Equal(t, name63, vm.Labels[names.SourceMachineLabel])
			}}},
		{name: "name-64", mutate: func(m *v1alpha1.Machine) { m.Name = "n64-" + strings.Repeat("a", 60) },
			want: invalidSpec("metadata.name: must be no more than 63 bytes")},
		{name: "name-253", mutate: func(m *v1alpha1.Machine) { m.Name = name253 },
			want: invalidSpec("metadata.name: must be no more than 63 bytes")},
		{name: "label-unicode", mutate: func(m *v1alpha1.Machine) { m.Labels = map[string]string{"example.com/owner": "ünïcødé"} },
			want: badOutcome{rejected: "metadata.labels: Invalid value"}},
		{name: "annotation-unicode", mutate: func(m *v1alpha1.Machine) {
			m.Annotations["example.com/note"] = "ünïcødé ☃"
			m.Annotations[names.VMAnnotationPrefix+"note"] = "名前 ✓"
		}, want: badOutcome{running: true, check: func(t *testing.T, st *stack.Stack, m *v1alpha1.Machine, vm *kubevirtv1.VirtualMachine) {
			assert.Equal(t, "名前 ✓", vm.Annotations[names.VMAnnotationPrefix+"note"], "the VM's pass-through annotation")
			assert.Equal(t, "ünïcødé ☃", m.Annotations["example.com/note"])
		}}},
		{name: "kvc-unknown", mutate: onConfig("no-such-config"),
			want: badOutcome{failed: &badFailure{contract.ErrTypeConfigNotFound, `KubevirtConfig "no-such-config": KubevirtConfig not found`}}, force: true},
		{name: "kvc-secret-missing", setup: func(t *testing.T, st *stack.Stack, ns string) { badConfigWithoutSecret(t, st, "bad-secret-missing") },
			mutate: onConfig("bad-secret-missing"), force: true,
			want: badOutcome{failed: &badFailure{contract.ErrTypeInvalidKubeconfig, "Secret machineflow-system/bad-secret-missing-kubeconfig not found"}}},
		{name: "kvc-secret-empty", setup: func(t *testing.T, st *stack.Stack, ns string) { badConfig(t, st, "bad-empty", nil) },
			mutate: onConfig("bad-empty"), force: true,
			want: badOutcome{failed: &badFailure{contract.ErrTypeInvalidKubeconfig, `key "kubeconfig" is empty`}}},
		{name: "kvc-not-kubeconfig", setup: func(t *testing.T, st *stack.Stack, ns string) {
			badConfig(t, st, "bad-garbage", []byte("this is not a kubeconfig: [ "+badToken(t)))
		}, mutate: onConfig("bad-garbage"), force: true,
			want: badOutcome{failed: &badFailure{contract.ErrTypeInvalidKubeconfig, "does not parse as a kubeconfig"}}},
		{name: "kvc-closed-port", setup: func(t *testing.T, st *stack.Stack, ns string) {
			addr, err := freeport.Address()
			require.NoError(t, err)
			badConfig(t, st, "bad-closed-port", badKubeconfig(t, "https://"+addr, nil))
		}, mutate: onConfig("bad-closed-port"), force: true,
			want: badOutcome{retrying: &badFailure{contract.ErrTypeClusterUnreachable, `KubevirtConfig "bad-closed-port": cluster unreachable`}}},
		{name: "kvc-black-hole", setup: func(t *testing.T, st *stack.Stack, ns string) {
			badConfig(t, st, "bad-black-hole", badKubeconfig(t, testutil.BlackHole(t), nil))
		}, mutate: onConfig("bad-black-hole"), force: true,
			want: badOutcome{retrying: &badFailure{contract.ErrTypeClusterUnreachable, `KubevirtConfig "bad-black-hole": cluster unreachable`}}},
		{name: "kvc-wrong-token", setup: func(t *testing.T, st *stack.Stack, ns string) {
			badConfig(t, st, "bad-wrong-token", badKubeconfig(t, "", kubevirt1.Kubeconfig))
		}, mutate: onConfig("bad-wrong-token"), force: true,
			want: badOutcome{failed: &badFailure{contract.ErrTypeUnauthorized, "the cluster rejected the credentials"}}},
		{name: "kvc-same-cluster", setup: func(t *testing.T, st *stack.Stack, ns string) {
			badConfig(t, st, "bad-alias", kubevirt1.Kubeconfig)
		}, mutate: onConfig("bad-alias"),
			want: badOutcome{running: true, check: func(t *testing.T, st *stack.Stack, m *v1alpha1.Machine, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, "bad-alias", m.Annotations[names.PlacementAnnotation])
				assert.Equal(t, "kubevirt://bad-alias/"+m.Namespace+"/"+m.Name, m.Status.ProviderID)
			}}},
		// KubeVirt refuses inline cloud-init over 2048 bytes: it goes
		// through a Secret, so a handful of SSH keys is fine.
		{name: "cloudinit-inline-8k", mutate: func(m *v1alpha1.Machine) {
			m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: badLargeUserData(t, m.Namespace, 8<<10)}
		}, want: badOutcome{running: true, check: badCloudInitInSecret}},
		{name: "cloudinit-over-1mib", mutate: func(m *v1alpha1.Machine) {
			m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserData: badLargeUserData(t, m.Namespace, vmplan.MaxCloudInitBytes+1)}
		}, want: invalidSpec(fmt.Sprintf("spec.cloudInit.userData: %d bytes, more than the %d a Kubernetes Secret can hold", vmplan.MaxCloudInitBytes+1, vmplan.MaxCloudInitBytes))},
		// A NetworkConfiguration made by someone else (an IPAM operator),
		// with a MAC only KubeVirt checks: its refusal, quoted, is the
		// Machine's final error.
		{name: "netconf-mac-malformed", setup: func(t *testing.T, st *stack.Stack, ns string) {
			badNetworkConfiguration(t, st, ns, "vm", "de:ad:00:00:be")
		},
			presetNetworkConfiguration: true,
			want:                       invalidSpec(`admission webhook "virtualmachine-validator.kubevirt.io" denied the request: interface spec.template.spec.domain.devices.interfaces[0].name has malformed MAC address (de:ad:00:00:be).`)},
		{name: "vm-conflict", setup: func(t *testing.T, st *stack.Stack, ns string) { badForeignVM(t, st, ns, "vm") },
			want: badOutcome{failed: &badFailure{contract.ErrTypeConflict,
				"VirtualMachine bad-vm-conflict/vm on kubevirt-1 exists and is not managed by machineflow"}}},
	}
}

// badMachine reads the Machine.
func badMachine(t *testing.T, st *stack.Stack, key client.ObjectKey) *v1alpha1.Machine {
	t.Helper()
	m := &v1alpha1.Machine{}
	require.NoError(t, st.Env.Supervisor.Client.Get(t.Context(), key, m))
	return m
}

// badWaitPhase waits until the Machine is in phase and fails early when it
// ends in the other final phase.
func badWaitPhase(t *testing.T, st *stack.Stack, key client.ObjectKey, phase string) *v1alpha1.Machine {
	t.Helper()
	deadline := time.Now().Add(badSettle)
	for {
		m := badMachine(t, st, key)
		got := m.Status.Phase
		if got == phase {
			return m
		}
		if got == v1alpha1.MachinePhaseFailed || got == v1alpha1.MachinePhaseRunning || time.Now().After(deadline) {
			require.Failf(t, "Machine not "+phase, "%s: phase %q, failure %s: %s, conditions %+v",
				key, got, deref(m.Status.FailureReason), deref(m.Status.FailureMessage), m.Status.Conditions)
		}
		time.Sleep(pollEvery)
	}
}

// badRequireNamed asserts that a Failed Machine names its problem in the
// failure fields and the workflow's Provisioning condition.
func badRequireNamed(t *testing.T, m *v1alpha1.Machine, want *badFailure) {
	t.Helper()
	assert.Equal(t, want.reason, deref(m.Status.FailureReason), "failure reason")
	assert.Contains(t, deref(m.Status.FailureMessage), want.message, "failure message")
	cond := badCondition(m, workflows.ConditionProvisioning)
	if assert.NotNil(t, cond, "condition %s", workflows.ConditionProvisioning) {
		assert.Equal(t, want.reason, cond.Reason)
		assert.Contains(t, cond.Message, want.message)
	}
}

// badRequireReported waits until the controller reports the run in its
// LifecycleWorkflow condition with reason, the problem named.
func badRequireReported(t *testing.T, st *stack.Stack, key client.ObjectKey, reason string, want *badFailure) {
	t.Helper()
	var cond *v1alpha1.MachineCondition
	ok := assert.Eventually(t, func() bool {
		cond = badCondition(badMachine(t, st, key), controller.ConditionLifecycleWorkflow)
		return cond != nil && cond.Reason == reason
	}, badSettle, pollEvery)
	if !ok {
		t.Errorf("%s: condition %s never became %s: %+v", key, controller.ConditionLifecycleWorkflow, reason, cond)
		return
	}
	assert.Contains(t, cond.Message, want.reason+": ")
	assert.Contains(t, cond.Message, want.message)
}

func badCondition(m *v1alpha1.Machine, condType string) *v1alpha1.MachineCondition {
	for i := range m.Status.Conditions {
		if m.Status.Conditions[i].Type == condType {
			return &m.Status.Conditions[i]
		}
	}
	return nil
}

// badRequireRetried waits until the open provision retries a step whose
// last failure is want, and checks that the retries are bounded. It
// returns the failure's message.
func badRequireRetried(t *testing.T, st *stack.Stack, id string, want *badFailure) string {
	t.Helper()
	var last string
	deadline := time.Now().Add(badSettle)
	for {
		desc, err := st.Temporal().DescribeWorkflow(t.Context(), id, "")
		if err == nil {
			require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.Status, "the provision closed instead of retrying")
			for _, a := range desc.RawResponse.GetPendingActivities() {
				f := a.GetLastFailure()
				if f == nil {
					continue
				}
				last = fmt.Sprintf("%s attempt %d: %s: %s", a.GetActivityType().GetName(), a.GetAttempt(),
					f.GetApplicationFailureInfo().GetType(), f.GetMessage())
				if f.GetApplicationFailureInfo().GetType() != want.reason || !strings.Contains(f.GetMessage(), want.message) {
					continue
				}
				// Retries stop at the step's ScheduleToClose.
				expires := a.GetExpirationTime().AsTime()
				require.False(t, expires.IsZero(), "%s retries without a deadline", a.GetActivityType().GetName())
				require.LessOrEqual(t, expires.Sub(a.GetScheduledTime().AsTime()), badActivityBound, "%s retries for too long", a.GetActivityType().GetName())
				return last
			}
		}
		require.True(t, time.Now().Before(deadline), "%s: no step retried with %s %q within %s; last failure: %s", id, want.reason, want.message, badSettle, last)
		time.Sleep(pollEvery)
	}
}

// badRequireNoSecretIn asserts that the Machine's status, which anyone who
// may read Machines sees, holds none of the secrets in play (the sweep
// after the suite covers histories and logs).
func badRequireNoSecretIn(t *testing.T, m *v1alpha1.Machine) {
	t.Helper()
	status, err := json.Marshal(m.Status)
	require.NoError(t, err)
	assert.Empty(t, secrets.Scan("status of Machine "+m.Namespace+"/"+m.Name, status))
}

// badRequireBackoff checks the provision runs of a Machine: each restart
// of a failed run waited at least the controller's retry backoff after
// the run before it closed. It returns the number of runs.
func badRequireBackoff(t *testing.T, st *stack.Stack, id string) int {
	t.Helper()
	resp, err := st.Temporal().ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: temporalclient.DefaultNamespace, Query: fmt.Sprintf("WorkflowId = '%s'", id), PageSize: 100,
	})
	require.NoError(t, err)
	runs := resp.GetExecutions()
	require.NotEmpty(t, runs, "%s: no run", id)
	slices.SortFunc(runs, func(a, b *workflowpb.WorkflowExecutionInfo) int {
		return a.GetStartTime().AsTime().Compare(b.GetStartTime().AsTime())
	})
	backoff := controller.Backoff{Initial: controller.DefaultRetryInitial, Max: controller.DefaultRetryMax}
	for i := 1; i < len(runs); i++ {
		prev, next := runs[i-1], runs[i]
		require.NotNil(t, prev.GetCloseTime(), "%s: run %d started while run %d was open", id, i+1, i)
		gap := next.GetStartTime().AsTime().Sub(prev.GetCloseTime().AsTime())
		assert.GreaterOrEqual(t, gap, backoff.Delay(i)-time.Second, "%s: run %d restarted %s after run %d closed", id, i+1, gap, i)
	}
	// A case lasts less than the first two backoffs.
	assert.LessOrEqual(t, len(runs), 2, "%s: runs", id)
	return len(runs)
}

// badOnlyVM asserts exactly one VM of the Machine across the clusters and
// returns it.
func badOnlyVM(t *testing.T, st *stack.Stack, m *v1alpha1.Machine) *kubevirtv1.VirtualMachine {
	t.Helper()
	var found []*kubevirtv1.VirtualMachine
	for _, c := range st.Env.Clusters {
		var vms kubevirtv1.VirtualMachineList
		require.NoError(t, c.Client.List(t.Context(), &vms, client.InNamespace(m.Namespace)))
		for i := range vms.Items {
			found = append(found, &vms.Items[i])
		}
	}
	require.Len(t, found, 1, "VMs of Machine %s/%s", m.Namespace, m.Name)
	return found[0]
}

// badRequireLeftNothing asserts that nothing of the Machine is left: no
// VM, VMI, PVC or NAD on any cluster, no NetworkConfiguration on the
// supervisor (but the Machine's own NetworkConfiguration with
// keepsNetworkConfiguration). A name too long for a label value cannot label anything, so
// for it nothing at all may be in the namespace.
func badRequireLeftNothing(t *testing.T, st *stack.Stack, ns, name string, keepsNetworkConfiguration bool) {
	t.Helper()
	ctx := t.Context()
	var left []string
	if len(validation.IsValidLabelValue(name)) == 0 {
		var err error
		left, err = st.Leftovers(ctx, ns, name)
		require.NoError(t, err)
	} else {
		for _, c := range st.Env.Clusters {
			var vms kubevirtv1.VirtualMachineList
			var pvcs corev1.PersistentVolumeClaimList
			require.NoError(t, c.Client.List(ctx, &vms, client.InNamespace(ns)))
			require.NoError(t, c.Client.List(ctx, &pvcs, client.InNamespace(ns)))
			for _, vm := range vms.Items {
				left = append(left, "VirtualMachine "+vm.Name+" on "+c.Name)
			}
			for _, pvc := range pvcs.Items {
				left = append(left, "PersistentVolumeClaim "+pvc.Name+" on "+c.Name)
			}
		}
	}
	var ncs v1alpha1.NetworkConfigurationList
	require.NoError(t, st.Env.Supervisor.Client.List(ctx, &ncs, client.InNamespace(ns)))
	for _, nc := range ncs.Items {
		if !(keepsNetworkConfiguration && nc.Name == name) {
			left = append(left, "NetworkConfiguration "+nc.Name+" on the supervisor")
		}
	}
	assert.Empty(t, left, "left behind by Machine %s/%s", ns, name)
}

// badDelete deletes the Machine, forced when its cluster cannot be
// cleaned up, and waits until its finalizer let it go.
func badDelete(t *testing.T, st *stack.Stack, key client.ObjectKey, force bool) {
	t.Helper()
	ctx := t.Context()
	sup := st.Env.Supervisor.Client
	m := badMachine(t, st, key)
	if force {
		patch := client.MergeFrom(m.DeepCopy())
		m.Annotations[names.ForceDeprovisionAnnotation] = "true"
		require.NoError(t, sup.Patch(ctx, m, patch))
	}
	require.NoError(t, sup.Delete(ctx, m))
	deadline := time.Now().Add(badSettle)
	for {
		err := sup.Get(ctx, key, &v1alpha1.Machine{})
		if apierrors.IsNotFound(err) {
			return
		}
		require.NoError(t, err)
		if time.Now().After(deadline) {
			got := badMachine(t, st, key)
			require.Failf(t, "Machine not deleted", "%s: phase %q, conditions %+v", key, got.Status.Phase, got.Status.Conditions)
		}
		time.Sleep(pollEvery)
	}
}

// badClass creates a MachineClass with cores and removes it when the test
// ends. A disabled class is patched to enabled: false after the create,
// because the CRD defaults an omitted enabled to true.
func badClass(t *testing.T, st *stack.Stack, name string, cores uint, enabled bool) string {
	t.Helper()
	ctx := t.Context()
	sup := st.Env.Supervisor.Client
	class := &v1alpha1.MachineClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.MachineClassSpec{
		Enabled: true, Category: "standard", MachineProviders: []v1alpha1.MachineProviderType{names.ProviderKubevirt},
		CPU:    v1alpha1.MachineClassCPUSpec{Cores: cores, Sockets: 1, Threads: 1},
		Memory: v1alpha1.MachineClassMemorySpec{Quantity: resource.MustParse("1Gi")},
		GPU:    v1alpha1.MachineClassGPUSpec{Cores: 1},
	}}
	require.NoError(t, sup.Create(ctx, class))
	badCleanup(t, st, class)
	if !enabled {
		require.NoError(t, sup.Patch(ctx, class, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"enabled":false}}`))))
	}
	return name
}

// badCleanup deletes a supervisor object when the test ends.
func badCleanup(t *testing.T, st *stack.Stack, obj client.Object) {
	t.Cleanup(func() {
		err := st.Env.Supervisor.Client.Delete(context.WithoutCancel(t.Context()), obj)
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %T %s: %v", obj, obj.GetName(), err)
		}
	})
}

// badNetworkNamespace creates NetworkNamespace name in ns on vlanID.
func badNetworkNamespace(t *testing.T, st *stack.Stack, ns, name string, vlanID int) {
	t.Helper()
	ctx := t.Context()
	sup := st.Env.Supervisor.Client
	nn := &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.NetworkNamespaceSpec{DatacenterIdentifier: "no-west-az1", SupervisorIdentifier: "stack"}}
	require.NoError(t, sup.Create(ctx, nn))
	nn.Status.VlanID = vlanID
	require.NoError(t, sup.Status().Update(ctx, nn))
}

// badUserDataFrom takes the Machine's user data from key of Secret name
// ("" for the default key).
func badUserDataFrom(name, key string) func(m *v1alpha1.Machine) {
	return func(m *v1alpha1.Machine) {
		m.Spec.CloudInit = &v1alpha1.CloudInitConfig{UserDataSecretRef: &v1alpha1.CloudInitSecretRef{Name: name, Key: key}}
	}
}

// badCloudInitSecret creates, or adds key to, the cloud-init Secret name
// in ns, with a payload the secret sweep looks for.
func badCloudInitSecret(t *testing.T, st *stack.Stack, ns, name, key string) {
	t.Helper()
	ctx := t.Context()
	sup := st.Env.Supervisor.Client
	payload := []byte("#cloud-config\n# badinput " + ns + " " + badToken(t) + "\n")
	rememberSecret("cloud-init of "+ns, payload)
	secret := &corev1.Secret{}
	err := sup.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret)
	if apierrors.IsNotFound(err) {
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{key: payload}}
		require.NoError(t, sup.Create(ctx, secret))
		return
	}
	require.NoError(t, err)
	secret.Data[key] = payload
	require.NoError(t, sup.Update(ctx, secret))
}

// badToken is a fresh random token.
func badToken(t *testing.T) string {
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "badinput-" + hex.EncodeToString(b)
}

// badKubeconfig is a kubeconfig with a fresh token the cluster does not
// know: base's clusters with every user replaced, or else one cluster at
// server. The sweep looks for it.
func badKubeconfig(t *testing.T, server string, base []byte) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	if base != nil {
		var err error
		cfg, err = clientcmd.Load(base)
		require.NoError(t, err)
	} else {
		cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
		cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
		cfg.CurrentContext = "c"
		cfg.AuthInfos["u"] = nil
	}
	token := badToken(t)
	for name := range cfg.AuthInfos {
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	}
	out, err := clientcmd.Write(*cfg)
	require.NoError(t, err)
	return out
}

// badConfig registers KubevirtConfig name with a Secret holding
// kubeconfig, and removes both when the test ends.
func badConfig(t *testing.T, st *stack.Stack, name string, kubeconfig []byte) {
	t.Helper()
	if len(kubeconfig) > 0 {
		rememberSecret("kubeconfig of KubevirtConfig "+name, kubeconfig)
	}
	require.NoError(t, st.Env.RegisterCluster(t.Context(), name, kubeconfig))
	badCleanup(t, st, &v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: name}})
	badCleanup(t, st, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: st.Env.ConfigNamespace, Name: testenv.KubeconfigSecretName(name)}})
}

// badConfigWithoutSecret registers KubevirtConfig name pointing at a
// Secret that does not exist.
func badConfigWithoutSecret(t *testing.T, st *stack.Stack, name string) {
	t.Helper()
	kvc := &v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.KubevirtConfigSpec{
		Name: name, SecretNamespace: st.Env.ConfigNamespace, KubeconfigSecretRef: testenv.KubeconfigSecretName(name),
	}}
	require.NoError(t, st.Env.Supervisor.Client.Create(t.Context(), kvc))
	badCleanup(t, st, kvc)
}

// badForeignVM creates, on kubevirt-1, a halted VM name in ns that
// machineflow did not make (no labels), and checks when the test ends that
// it is still there, untouched.
func badForeignVM(t *testing.T, st *stack.Stack, ns, name string) {
	t.Helper()
	ctx := t.Context()
	c := st.Env.Clusters[0].Client
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	vm := kubevirtadmission.MinimalVM(ns, name)
	require.NoError(t, c.Create(ctx, vm))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		got := &kubevirtv1.VirtualMachine{}
		if assert.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(vm), got), "someone else's VM is gone") {
			assert.Equal(t, vm.UID, got.UID, "someone else's VM was replaced")
			assert.Empty(t, got.Labels, "someone else's VM was labelled")
			assert.NoError(t, c.Delete(ctx, got))
		}
	})
}

// badLargeUserData is a cloud-config of n bytes: SSH keys, one with a
// token the secret sweep looks for.
func badLargeUserData(t *testing.T, ns string, n int) string {
	t.Helper()
	token := badToken(t)
	rememberSecret("large cloud-init of "+ns, []byte(token))
	b := strings.Builder{}
	b.WriteString("#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 " + token + " first\n")
	for b.Len() < n {
		b.WriteString("  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1aWxkLXRoZS1sYXJnZXN0LWNsb3VkLWluaXQtcGF5bG9hZA user@host\n")
	}
	return b.String()[:n]
}

// badCloudInitInSecret: the VM carries no cloud-init payload, only a
// reference to the Secret next to it, which holds the Machine's.
func badCloudInitInSecret(t *testing.T, st *stack.Stack, m *v1alpha1.Machine, vm *kubevirtv1.VirtualMachine) {
	t.Helper()
	secret := testutil.RequireCloudInitInSecret(t, st.Env.Clusters[0].Client, vm)
	assert.Equal(t, m.Spec.CloudInit.UserData, string(secret.Data[vmplan.CloudInitUserDataKey]))
}

// badNetworkConfiguration is a NetworkConfiguration for Machine name,
// labelled as machineflow's, whose interface on the stack's VLAN has mac.
func badNetworkConfiguration(t *testing.T, st *stack.Stack, ns, name, mac string) {
	t.Helper()
	nad, err := vmplan.BuildNAD(contract.MachineRef{Namespace: ns, Name: name}, stack.VLANID, "0.3.1")
	require.NoError(t, err)
	nc := &v1alpha1.NetworkConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: names.ManagedLabels(name)},
		Spec: v1alpha1.NetworkConfigurationSpec{
			Name:              vmplan.ShortNetworkConfigName(name),
			NetworkInterfaces: []v1alpha1.NetworkConfigurationInterface{{Name: nad.GetName(), MacAddress: mac}},
		},
	}
	require.NoError(t, st.Env.Supervisor.Client.Create(t.Context(), nc))
}
