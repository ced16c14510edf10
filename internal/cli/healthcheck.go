package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/machineflow/machineflow/workflows"
)

// minScheduleInterval keeps a typo ("5s" for "5m") from validating every
// cluster several times a minute.
const minScheduleInterval = 10 * time.Second

func (a *app) healthCheckCommand() *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "health-check",
		Short: "Check every KubeVirt cluster once (ClusterHealthCheck)",
		Long: `Start the ClusterHealthCheck workflow now: it validates the connection
to every KubevirtConfig, records the outcome in the KubevirtConfig's status
and drops the cached client of an unhealthy cluster. A check that is
already running is reused. With --wait, the report is printed.`,
		Example: `  starter health-check --wait
  starter health-check --wait -o json`,
		Args: noArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			if err := w.validate(); err != nil {
				return err
			}
			return a.withClient(ctx, func(c client.Client) error {
				open, err := openRun(ctx, c, workflows.HealthCheckWorkflowID)
				if err != nil {
					return err
				}
				run, err := a.starter(c).StartHealthCheck(ctx)
				if err != nil {
					return err
				}
				var report workflows.HealthReport
				// ClusterHealthCheck has no status query: nothing to poll.
				return a.startedOrWait(ctx, c, run, open == "", w, false, &report, func() error { return a.printHealth(report) })
			})
		}),
	}
	w.bind(cmd)
	return cmd
}

func (a *app) printHealth(r workflows.HealthReport) error {
	rows := make([][]string, len(r.Clusters))
	for i, c := range r.Clusters {
		rows[i] = []string{c.KubevirtConfig, strconv.FormatBool(c.Healthy), c.Duration.Round(time.Millisecond).String(), timestamp(c.CheckedAt), orDash(c.Reason)}
	}
	return a.printer().table([]string{"KUBEVIRT CONFIG", "HEALTHY", "DURATION", "CHECKED", "REASON"}, rows)
}

func (a *app) scheduleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Manage the Temporal Schedule that runs ClusterHealthCheck",
		Long: `Manage the Temporal Schedule "` + workflows.HealthCheckScheduleID + `", which starts
ClusterHealthCheck at a fixed interval. A run that would overlap one still
running is skipped.`,
		Args: noArgs,
	}
	cmd.AddCommand(a.scheduleHealthCheckCommand(), a.scheduleShowCommand(), a.scheduleDeleteCommand(), a.scheduleTriggerCommand())
	return cmd
}

func (a *app) scheduleHealthCheckCommand() *cobra.Command {
	var (
		every  time.Duration
		paused bool
	)
	cmd := &cobra.Command{
		Use:   "health-check --every INTERVAL",
		Short: "Create or update the health-check Schedule",
		Example: `  # check every cluster every 5 minutes
  starter schedule health-check --every 5m`,
		Args: noArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			if every < minScheduleInterval {
				return usageErrorf("--every %s: must be at least %s", every, minScheduleInterval)
			}
			return a.withClient(ctx, func(c client.Client) error {
				created, err := a.upsertSchedule(ctx, c, every, paused)
				if err != nil {
					return err
				}
				verb := "updated"
				if created {
					verb = "created"
				}
				if a.printer().json() {
					return a.printer().writeJSON(map[string]any{"scheduleId": workflows.HealthCheckScheduleID, "created": created, "every": every.String()})
				}
				fmt.Fprintf(a.out, "schedule %s %s: ClusterHealthCheck every %s, overlapping runs skipped\n", workflows.HealthCheckScheduleID, verb, every)
				return nil
			})
		}),
	}
	cmd.Flags().DurationVar(&every, "every", 0, "interval between two checks, e.g. 5m (required)")
	cmd.Flags().BoolVar(&paused, "paused", false, "create or leave the Schedule paused")
	return cmd
}

// upsertSchedule creates the Schedule, or replaces the spec, action and
// overlap policy of the existing one; created says which.
func (a *app) upsertSchedule(ctx context.Context, c client.Client, every time.Duration, paused bool) (created bool, err error) {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := a.starter(c).HealthCheckAction()
	_, err = c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      workflows.HealthCheckScheduleID,
		Spec:    spec,
		Action:  action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Paused:  paused,
	})
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, fmt.Errorf("create schedule %s: %w", workflows.HealthCheckScheduleID, err)
	}
	err = c.ScheduleClient().GetHandle(ctx, workflows.HealthCheckScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &spec
			s.Action = action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
			if s.State == nil {
				s.State = &client.ScheduleState{}
			}
			s.State.Paused = paused
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return false, fmt.Errorf("update schedule %s: %w", workflows.HealthCheckScheduleID, err)
	}
	return false, nil
}

// ScheduleReport is what schedule show prints.
type ScheduleReport struct {
	ScheduleID       string           `json:"scheduleId"`
	Every            []string         `json:"every"`
	Workflow         string           `json:"workflow"`
	TaskQueue        string           `json:"taskQueue"`
	Overlap          string           `json:"overlap"`
	Paused           bool             `json:"paused"`
	Actions          int              `json:"actions"`
	SkippedOverlap   int              `json:"skippedOverlap"`
	NextRuns         []time.Time      `json:"nextRuns"`
	RecentRuns       []ScheduledRun   `json:"recentRuns"`
	RunningWorkflows []ScheduledStart `json:"runningWorkflows"`
}

// ScheduledRun is one action the Schedule took.
type ScheduledRun struct {
	ScheduledAt time.Time `json:"scheduledAt"`
	StartedAt   time.Time `json:"startedAt"`
	WorkflowID  string    `json:"workflowId"`
	RunID       string    `json:"runId"`
}

// ScheduledStart is a workflow the Schedule started that is still running.
type ScheduledStart struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

func (a *app) scheduleShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "show",
		Short:   "Show the health-check Schedule: interval, next and recent runs",
		Example: `  starter schedule show -o json`,
		Args:    noArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.withClient(ctx, func(c client.Client) error {
				desc, err := c.ScheduleClient().GetHandle(ctx, workflows.HealthCheckScheduleID).Describe(ctx)
				if err != nil {
					return scheduleError("describe", err)
				}
				r := scheduleReport(desc)
				if a.printer().json() {
					return a.printer().writeJSON(r)
				}
				return a.printSchedule(r)
			})
		}),
	}
}

func scheduleReport(d *client.ScheduleDescription) ScheduleReport {
	r := ScheduleReport{
		ScheduleID:       workflows.HealthCheckScheduleID,
		Actions:          d.Info.NumActions,
		SkippedOverlap:   d.Info.NumActionsSkippedOverlap,
		NextRuns:         d.Info.NextActionTimes,
		Every:            []string{},
		RecentRuns:       []ScheduledRun{},
		RunningWorkflows: []ScheduledStart{},
	}
	if s := d.Schedule.Spec; s != nil {
		for _, iv := range s.Intervals {
			r.Every = append(r.Every, iv.Every.String())
		}
	}
	if act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		r.TaskQueue = act.TaskQueue
		if name, ok := act.Workflow.(string); ok {
			r.Workflow = name
		}
	}
	if p := d.Schedule.Policy; p != nil {
		r.Overlap = p.Overlap.String()
	}
	if st := d.Schedule.State; st != nil {
		r.Paused = st.Paused
	}
	for _, act := range d.Info.RecentActions {
		run := ScheduledRun{ScheduledAt: act.ScheduleTime, StartedAt: act.ActualTime}
		if act.StartWorkflowResult != nil {
			run.WorkflowID, run.RunID = act.StartWorkflowResult.WorkflowID, act.StartWorkflowResult.FirstExecutionRunID
		}
		r.RecentRuns = append(r.RecentRuns, run)
	}
	for _, w := range d.Info.RunningWorkflows {
		r.RunningWorkflows = append(r.RunningWorkflows, ScheduledStart{WorkflowID: w.WorkflowID, RunID: w.FirstExecutionRunID})
	}
	return r
}

func (a *app) printSchedule(r ScheduleReport) error {
	p := a.printer()
	next := make([]string, 0, 3)
	for _, t := range r.NextRuns[:min(3, len(r.NextRuns))] {
		next = append(next, timestamp(t))
	}
	fmt.Fprintf(a.out, "Schedule %s\n", r.ScheduleID)
	if err := p.fields("  ", []field{
		{"Workflow", r.Workflow},
		{"Task queue", r.TaskQueue},
		{"Every", joinNonEmpty(", ", r.Every...)},
		{"Overlap", r.Overlap},
		{"Paused", strconv.FormatBool(r.Paused)},
		{"Actions", fmt.Sprintf("%d taken, %d skipped (overlap)", r.Actions, r.SkippedOverlap)},
		{"Next runs", joinNonEmpty(", ", next...)},
	}); err != nil {
		return err
	}
	if len(r.RecentRuns) == 0 {
		return nil
	}
	fmt.Fprintln(a.out, "Recent runs:")
	rows := make([][]string, len(r.RecentRuns))
	for i, run := range r.RecentRuns {
		rows[i] = []string{timestamp(run.ScheduledAt), timestamp(run.StartedAt), run.WorkflowID}
	}
	return p.table([]string{"SCHEDULED", "STARTED", "WORKFLOW ID"}, rows)
}

func (a *app) scheduleDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete",
		Short: "Delete the health-check Schedule (running checks are not stopped)",
		Args:  noArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.withClient(ctx, func(c client.Client) error {
				if err := c.ScheduleClient().GetHandle(ctx, workflows.HealthCheckScheduleID).Delete(ctx); err != nil {
					return scheduleError("delete", err)
				}
				fmt.Fprintf(a.out, "schedule %s deleted\n", workflows.HealthCheckScheduleID)
				return nil
			})
		}),
	}
}

func (a *app) scheduleTriggerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "trigger",
		Short: "Run the health-check Schedule's action now (skipped if a check is running)",
		Args:  noArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			return a.withClient(ctx, func(c client.Client) error {
				err := c.ScheduleClient().GetHandle(ctx, workflows.HealthCheckScheduleID).Trigger(ctx, client.ScheduleTriggerOptions{})
				if err != nil {
					return scheduleError("trigger", err)
				}
				fmt.Fprintf(a.out, "schedule %s triggered\n", workflows.HealthCheckScheduleID)
				return nil
			})
		}),
	}
}

// scheduleError names the Schedule; a missing one is ExitNotFound.
func scheduleError(op string, err error) error {
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return notFoundErrorf("no schedule %s (create it with `starter schedule health-check --every 5m`)", workflows.HealthCheckScheduleID)
	}
	return fmt.Errorf("%s schedule %s: %w", op, workflows.HealthCheckScheduleID, err)
}
