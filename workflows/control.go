package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
)

// ControlActivities are activities about Temporal itself rather than about
// machines, so they live next to the workflows that need them and are
// registered by Register.
type ControlActivities struct {
	Client client.Client
	// MaxPollInterval caps the wait between two looks at a workflow; zero
	// means 5s.
	MaxPollInterval time.Duration
}

// AwaitWorkflowClosed returns once the latest run of workflowID has closed
// (or never existed). It describes the workflow with a growing interval and
// heartbeats after every look, so a lost worker is noticed within the
// heartbeat timeout and a cancellation reaches it.
func (c *ControlActivities) AwaitWorkflowClosed(ctx context.Context, workflowID string) error {
	maxInterval := c.MaxPollInterval
	if maxInterval <= 0 {
		maxInterval = 5 * time.Second
	}
	interval := min(200*time.Millisecond, maxInterval)
	for {
		desc, err := c.Client.DescribeWorkflow(ctx, workflowID, "")
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			return nil
		case err != nil:
			return fmt.Errorf("describe workflow %s: %w", workflowID, err)
		}
		status := desc.Status
		if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && status != enumspb.WORKFLOW_EXECUTION_STATUS_PAUSED {
			return nil
		}
		activity.RecordHeartbeat(ctx, status.String())
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		interval = min(2*interval, maxInterval)
	}
}
