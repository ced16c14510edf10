package stack

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// The stack's moving parts, through the path the suites use: the
// controller starts a provision for a new Machine; a worker killed with
// SIGKILL mid-boot and Temporal restarted on its database leave the run
// to finish on the restarted processes.
func TestStackSurvivesKillsAndRestarts(t *testing.T) {
	s := New(t, Options{Clusters: 1, Controller: true, TemporalDB: true})
	ctx := t.Context()
	require.NoError(t, s.Namespace(ctx, "stack"))
	m := NewMachine("stack", "vm-1")
	m.Annotations[kubevirtsim.BootDelayAnnotation] = "4s"
	require.NoError(t, s.Env.Supervisor.Client.Create(ctx, m))

	id := workflows.ProvisionWorkflowID("stack", "vm-1")
	require.Eventually(t, func() bool {
		_, err := s.Temporal().DescribeWorkflow(ctx, id, "")
		return err == nil
	}, time.Minute, 100*time.Millisecond, "the controller starts the provision")

	w := s.Workers[0]
	require.NoError(t, w.Kill())
	assert.False(t, w.Running())
	assert.Equal(t, -1, w.ExitCode(), "killed by a signal")
	require.NoError(t, s.RestartTemporal(ctx, time.Second))
	desc, err := s.Temporal().DescribeWorkflow(ctx, id, "")
	require.NoError(t, err, "the restarted server has the run")
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.Status)
	require.NoError(t, w.Start(ctx))
	assert.Error(t, w.Start(ctx), "a running service is not started twice")

	var res workflows.ProvisionResult
	require.NoError(t, s.Temporal().GetWorkflow(ctx, id, "").Get(ctx, &res))
	assert.Equal(t, s.Env.Clusters[0].Name, res.KubevirtConfig)
	require.Eventually(t, func() bool {
		got := &v1alpha1.Machine{}
		return s.Env.Supervisor.Client.Get(ctx, client.ObjectKeyFromObject(m), got) == nil && got.Status.Phase == v1alpha1.MachinePhaseRunning
	}, time.Minute, 100*time.Millisecond, "the Machine is Running")
	assert.True(t, s.Controller.Running(), "the controller lived through Temporal's restart")
	assert.FileExists(t, s.Controller.LogPath())
}

func TestRestartTemporalNeedsADatabase(t *testing.T) {
	s := &Stack{}
	assert.ErrorContains(t, s.RestartTemporal(t.Context(), 0), "needs Options.TemporalDB")
}
