package stack

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/api/serviceerror"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/workflows"
)

// A stack made without a controller leaves a new Machine alone until
// StartController starts one, which then provisions it.
func TestStartControllerLater(t *testing.T) {
	s := New(t, Options{Clusters: 1})
	ctx := t.Context()
	require.Nil(t, s.Controller)
	require.NoError(t, s.Namespace(ctx, "later"))
	m := NewMachine("later", "vm-1")
	require.NoError(t, s.Env.Supervisor.Client.Create(ctx, m))

	id := workflows.ProvisionWorkflowID("later", "vm-1")
	_, err := s.Temporal().DescribeWorkflow(ctx, id, "")
	var notFound *serviceerror.NotFound
	require.ErrorAs(t, err, &notFound, "no controller, no provision")

	c, err := s.StartController(ctx)
	require.NoError(t, err)
	assert.Same(t, c, s.Controller)
	assert.True(t, c.Running())
	_, err = s.StartController(ctx)
	assert.ErrorContains(t, err, "has a controller already")

	require.Eventually(t, func() bool {
		got := &v1alpha1.Machine{}
		return s.Env.Supervisor.Client.Get(ctx, client.ObjectKeyFromObject(m), got) == nil && got.Status.Phase == v1alpha1.MachinePhaseRunning
	}, time.Minute, 100*time.Millisecond, "the controller provisions the Machine")
	_, err = s.Temporal().DescribeWorkflow(ctx, id, "")
	assert.NoError(t, err, "through the provision workflow")
}
