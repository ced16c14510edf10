package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/workflows"
)

// runCLI runs Main with an empty environment plus env.
func runCLI(ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(ctx, args, &out, &errOut, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	return code, out.String(), errOut.String()
}

func TestParseMachineRef(t *testing.T) {
	for _, tc := range []struct {
		arg, wantErr string
	}{
		{arg: "default/vm1"},
		{arg: "team-a/vm.example"},
		{arg: "vm1", wantErr: `Machine "vm1": want NAMESPACE/NAME`},
		{arg: "/vm1", wantErr: "want NAMESPACE/NAME"},
		{arg: "default/", wantErr: "want NAMESPACE/NAME"},
		{arg: "a/b/c", wantErr: "want NAMESPACE/NAME"},
		{arg: "Default/vm1", wantErr: `namespace "Default"`},
		{arg: "default/VM_1", wantErr: `name "VM_1"`},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			ref, err := parseMachineRef(tc.arg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.arg, ref.Namespace+"/"+ref.Name)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Equal(t, ExitUsage, exitCode(err))
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestListQuery(t *testing.T) {
	all := "WorkflowType IN ('ProvisionMachine', 'DeprovisionMachine', 'ClusterHealthCheck')"
	for _, tc := range []struct {
		name    string
		f       listFilter
		want    string
		wantErr string
	}{
		{name: "no filter", f: listFilter{limit: 1}, want: all},
		{name: "every filter", f: listFilter{machine: "default/vm1", config: "kubevirt-1", phase: "Failed", workflowType: "provision", open: true, limit: 10},
			want: "WorkflowType = 'ProvisionMachine' AND MachineNamespace = 'default' AND MachineName = 'vm1' AND KubevirtConfig = 'kubevirt-1' AND MachinePhase = 'Failed' AND ExecutionStatus = 'Running'"},
		{name: "health checks", f: listFilter{workflowType: "health-check", limit: 1}, want: "WorkflowType = 'ClusterHealthCheck'"},
		{name: "open", f: listFilter{open: true, limit: 1}, want: all + " AND ExecutionStatus = 'Running'"},
		{name: "quote in config", f: listFilter{config: "a' OR 'x'='x", limit: 1}, wantErr: `--config "a' OR 'x'='x"`},
		{name: "unknown phase", f: listFilter{phase: "Running' OR", limit: 1}, wantErr: "--phase"},
		{name: "bad machine", f: listFilter{machine: "vm1", limit: 1}, wantErr: "--machine: Machine \"vm1\""},
		{name: "bad type", f: listFilter{workflowType: "reboot", limit: 1}, wantErr: `--type "reboot"`},
		{name: "bad limit", f: listFilter{limit: 0}, wantErr: "--limit 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f.query()
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Equal(t, ExitUsage, exitCode(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("boom"), ExitFailed},
		{"usage", usageErrorf("bad"), ExitUsage},
		{"explicit code wins", withCode(ExitTimeout, context.DeadlineExceeded), ExitTimeout},
		{"not found", fmt.Errorf("describe: %w", serviceerror.NewNotFound("workflow not found")), ExitNotFound},
		{"unavailable", fmt.Errorf("list: %w", serviceerror.NewUnavailable("connection refused")), ExitUnreachable},
		{"grpc unavailable", status.Error(codes.Unavailable, "no route"), ExitUnreachable},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), ExitUnreachable},
		{"invalid argument", serviceerror.NewInvalidArgument("bad query"), ExitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, exitCode(tc.err))
		})
	}
}

func TestFailureChain(t *testing.T) {
	root := temporal.NewNonRetryableApplicationError("VM default/vm1 on kv-a failed to boot: CrashLoopBackOff", contract.ErrTypeBootFailed, nil)
	top := temporal.NewNonRetryableApplicationError("WaitForVirtualMachine: VM default/vm1 on kv-a failed to boot: CrashLoopBackOff", contract.ErrTypeBootFailed, root)
	chain := failureChain(top)
	require.Equal(t, []Cause{
		{Type: contract.ErrTypeBootFailed, Message: "WaitForVirtualMachine: VM default/vm1 on kv-a failed to boot: CrashLoopBackOff"},
		{Type: contract.ErrTypeBootFailed, Message: "VM default/vm1 on kv-a failed to boot: CrashLoopBackOff"},
	}, chain)
	assert.Equal(t, "VMBootFailed: WaitForVirtualMachine: VM default/vm1 on kv-a failed to boot: CrashLoopBackOff", describeFailure(chain),
		"a cause that repeats the message adds nothing")

	wrapped := temporal.NewNonRetryableApplicationError("provisioning stopped", "Wrapper", errors.New("dial tcp 10.0.0.1:6443: i/o timeout"))
	assert.Equal(t, "Wrapper: provisioning stopped; caused by Error: dial tcp 10.0.0.1:6443: i/o timeout", describeFailure(failureChain(wrapped)))

	assert.Equal(t, []Cause{{Type: "Cancelled", Message: "the workflow was cancelled"}}, failureChain(temporal.NewCanceledError()))
	assert.Equal(t, "unknown failure", describeFailure(nil))
}

func TestCloseStatus(t *testing.T) {
	assert.Equal(t, "Canceled", closeStatus(temporal.NewCanceledError()))
	assert.Equal(t, "Failed", closeStatus(temporal.NewApplicationError("x", "T")))
	assert.Equal(t, "TimedOut", closeStatus(temporal.NewTimeoutError(0, nil)))
	assert.Equal(t, "Failed", closeStatus(temporal.NewTimeoutError(0, temporal.NewApplicationError("last", "T"))),
		"a timeout after an application failure is that failure")
}

func TestFormatStep(t *testing.T) {
	p := workflows.Progress{Step: contract.EnsureVolumesName, Attempts: map[string]int{contract.EnsureVolumesName: 3}}
	assert.Equal(t, "  EnsureVolumes                (attempt 3)", formatStep(p))
	p.Attempts[contract.EnsureVolumesName] = 1
	p.StartedAt = time.Now().Add(-1500 * time.Millisecond)
	assert.Regexp(t, `^  \[   1\.\ds\]  EnsureVolumes +$`, formatStep(p))
}

func TestPrinters(t *testing.T) {
	var out bytes.Buffer
	a := &app{out: &out, errOut: &out, output: formatTable}
	require.NoError(t, a.printProvisionResult(workflows.ProvisionResult{
		KubevirtConfig: "kubevirt-1", VMNamespace: "default", VMName: "vm1", IPAddresses: []string{"10.0.0.5", "10.0.0.6"},
	}))
	assert.Equal(t, "  KubevirtConfig:  kubevirt-1\n  VirtualMachine:  default/vm1\n  IP addresses:    10.0.0.5, 10.0.0.6\n", out.String(),
		"empty fields (no IPv6) are left out")

	out.Reset()
	checked := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, a.printHealth(workflows.HealthReport{Clusters: []contract.ClusterHealth{
		{KubevirtConfig: "kubevirt-1", Healthy: true, Duration: 12345 * time.Microsecond, CheckedAt: checked},
		{KubevirtConfig: "kubevirt-2", Reason: "ClusterUnreachable: connection refused", Duration: time.Second, CheckedAt: checked},
	}}))
	assert.Equal(t, strings.Join([]string{
		"KUBEVIRT CONFIG  HEALTHY  DURATION  CHECKED               REASON",
		"kubevirt-1       true     12ms      2026-01-02T03:04:05Z  -",
		"kubevirt-2       false    1s        2026-01-02T03:04:05Z  ClusterUnreachable: connection refused",
		"",
	}, "\n"), out.String())

	out.Reset()
	a.output = formatJSON
	rows := []WorkflowSummary{{WorkflowID: "provision/default/vm1", RunID: "r1", Type: workflows.ProvisionMachineName, Status: "Running", Phase: "Creating", StartTime: checked}}
	require.NoError(t, a.printList(rows))
	var got []WorkflowSummary
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.Equal(t, rows, got)
	assert.NotContains(t, out.String(), "closeTime", "an open run has no close time")
}

// TestUsageErrors: bad arguments and flags end with one line and exit 2,
// before any connection is attempted (the address is unroutable).
func TestUsageErrors(t *testing.T) {
	env := map[string]string{"TEMPORAL_ADDRESS": "192.0.2.1:7233"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"provision"}, "want one argument NAMESPACE/NAME, got 0"},
		{[]string{"provision", "vm1"}, `Machine "vm1": want NAMESPACE/NAME`},
		{[]string{"provision", "default/vm1", "--boot-timeout", "forever"}, `--boot-timeout "forever": not a Go duration`},
		{[]string{"provision", "default/vm1", "--config", "Not_A_Name"}, `--config "Not_A_Name"`},
		{[]string{"provision", "default/vm1", "--wait", "--poll-interval", "0s"}, "--poll-interval 0s: must be positive"},
		{[]string{"deprovision", "default/vm1", "--frce"}, "unknown flag: --frce"},
		{[]string{"status", "default/vm1", "-o", "yaml"}, `--output "yaml": want table or json`},
		{[]string{"list", "--phase", "Booting"}, `--phase "Booting": want one of`},
		{[]string{"list", "extra"}, `unexpected argument "extra"`},
		{[]string{"schedule", "health-check"}, "--every 0s: must be at least 10s"},
		{[]string{"schedule", "health-check", "--every", "often"}, `invalid argument "often"`},
		{[]string{"reboot", "default/vm1"}, `unknown command "reboot"`},
		{[]string{"list", "--temporal-address", "nocolon"}, `TEMPORAL_ADDRESS="nocolon": must be host:port`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t.Context(), env, tc.args...)
			assert.Equal(t, ExitUsage, code)
			assert.Empty(t, stdout)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			require.Len(t, lines, 2, "one error line and one hint: %q", stderr)
			assert.True(t, strings.HasPrefix(lines[0], "error: "), lines[0])
			assert.Contains(t, lines[0], tc.want)
			assert.Regexp(t, `^Run 'starter( [a-z-]+)* --help' for usage\.$`, lines[1])
		})
	}
}

func TestEnvironmentErrors(t *testing.T) {
	code, _, stderr := runCLI(t.Context(), map[string]string{"TEMPORAL_CONNECT_TIMEOUT": "soon"}, "list")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, `TEMPORAL_CONNECT_TIMEOUT="soon"`)
}

func TestUnreachableTemporal(t *testing.T) {
	// A port that was free a moment ago refuses connections.
	addr := testutil.FreeAddress(t)

	start := time.Now()
	code, stdout, stderr := runCLI(t.Context(), map[string]string{"TEMPORAL_ADDRESS": addr, "TEMPORAL_CONNECT_TIMEOUT": "3s"}, "status", "default/vm1")
	assert.Equal(t, ExitUnreachable, code)
	assert.Empty(t, stdout)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	assert.Contains(t, stderr, "error: connecting to Temporal at "+addr)
	t.Logf("unreachable Temporal reported after %s", time.Since(start).Round(time.Millisecond))
}

func TestHelp(t *testing.T) {
	code, stdout, _ := runCLI(t.Context(), nil, "--help")
	assert.Equal(t, ExitOK, code)
	assert.Contains(t, stdout, exitCodesHelp)
	for _, cmd := range []string{"provision", "deprovision", "status", "list", "health-check", "schedule"} {
		code, stdout, _ := runCLI(t.Context(), nil, cmd, "--help")
		assert.Equal(t, ExitOK, code, cmd)
		assert.Contains(t, stdout, "Usage:", cmd)
		if cmd != "schedule" {
			assert.Contains(t, stdout, "Examples:", cmd)
		}
	}
}
