package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/workflows"
)

// WorkflowStatus is one lifecycle workflow of a Machine, as status shows it.
type WorkflowStatus struct {
	WorkflowID     string              `json:"workflowId"`
	RunID          string              `json:"runId"`
	Type           string              `json:"type"`
	Status         string              `json:"status"`
	StartTime      time.Time           `json:"startTime"`
	CloseTime      *time.Time          `json:"closeTime,omitempty"`
	KubevirtConfig string              `json:"kubevirtConfig,omitempty"`
	Phase          string              `json:"phase,omitempty"`
	Progress       *workflows.Progress `json:"progress,omitempty"`
	// QueryError says why Progress is missing.
	QueryError string `json:"queryError,omitempty"`
}

// MachineReport is the output of status.
type MachineReport struct {
	Namespace string           `json:"namespace"`
	Name      string           `json:"name"`
	Workflows []WorkflowStatus `json:"workflows"`
	// Machine is nil when it could not be read; MachineError says why.
	Machine      *MachineStatus `json:"machine,omitempty"`
	MachineError string         `json:"machineError,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status NAMESPACE/NAME",
		Short: "Show a Machine's workflows and its status on the supervisor",
		Long: `Show the provision, ISO-eject and deprovision workflows of a Machine (their
state and the answer to their "status" query: current step, attempts per
step, last error) and the Machine's status on the supervisor cluster.

The supervisor is read with --kubeconfig, else $KUBECONFIG or
~/.kube/config; without one, only the workflows are shown. A Machine with
no workflow at all exits 3.`,
		Example: `  starter status default/vm1
  starter status default/vm1 --kubeconfig supervisor.kubeconfig -o json`,
		Args: machineArg,
		RunE: a.run(func(ctx context.Context, args []string) error {
			ref, _ := parseMachineRef(args[0]) // checked by machineArg
			return a.withClient(ctx, func(c client.Client) error {
				report, err := a.machineReport(ctx, c, ref)
				if err != nil {
					return err
				}
				if a.printer().json() {
					return a.printer().writeJSON(report)
				}
				return a.printReport(report)
			})
		}),
	}
}

func (a *app) machineReport(ctx context.Context, c client.Client, ref contract.MachineRef) (MachineReport, error) {
	r := MachineReport{Namespace: ref.Namespace, Name: ref.Name, Workflows: []WorkflowStatus{}}
	for _, id := range []string{
		workflows.ProvisionWorkflowID(ref.Namespace, ref.Name),
		workflows.EjectISOWorkflowID(ref.Namespace, ref.Name),
		workflows.DeprovisionWorkflowID(ref.Namespace, ref.Name),
	} {
		ws, found, err := workflowStatus(ctx, c, id)
		if err != nil {
			return r, err
		}
		if found {
			r.Workflows = append(r.Workflows, ws)
		}
	}
	if len(r.Workflows) == 0 {
		return r, notFoundErrorf("no workflow for Machine %s/%s (neither %s nor %s exists)", ref.Namespace, ref.Name,
			workflows.ProvisionWorkflowID(ref.Namespace, ref.Name), workflows.DeprovisionWorkflowID(ref.Namespace, ref.Name))
	}
	st, found, err := a.machineStatus(ctx, ref)
	switch {
	case err != nil:
		r.MachineError = oneLine(err)
	case !found:
		r.MachineError = "not found on the supervisor"
	default:
		r.Machine = &st
	}
	return r, nil
}

// workflowStatus describes the latest run with this ID and queries its
// progress; found is false when no run exists.
func workflowStatus(ctx context.Context, c client.Client, id string) (ws WorkflowStatus, found bool, err error) {
	desc, err := c.DescribeWorkflow(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return ws, false, nil
	}
	if err != nil {
		return ws, false, fmt.Errorf("describe workflow %s: %w", id, err)
	}
	ws = WorkflowStatus{
		WorkflowID: id,
		RunID:      desc.WorkflowExecution.RunID,
		Type:       desc.WorkflowType.Name,
		Status:     desc.Status.String(),
		StartTime:  desc.WorkflowStartTime,
		CloseTime:  desc.WorkflowCloseTime,
	}
	ws.KubevirtConfig, _ = desc.TypedSearchAttributes.GetKeyword(workflows.KubevirtConfigKey)
	ws.Phase, _ = desc.TypedSearchAttributes.GetKeyword(workflows.MachinePhaseKey)
	p, err := queryProgress(ctx, c, id, ws.RunID)
	if err != nil {
		ws.QueryError = oneLine(err)
	} else {
		ws.Progress = &p
	}
	return ws, true, nil
}

func (a *app) printReport(r MachineReport) error {
	p := a.printer()
	fmt.Fprintf(a.out, "Machine %s/%s\n", r.Namespace, r.Name)
	if m := r.Machine; m != nil {
		if err := p.fields("  ", []field{
			{"Phase", orDash(m.Phase)},
			{"State", m.State},
			{"KubevirtConfig", m.KubevirtConfig},
			{"IP addresses", strings.Join(m.IPAddresses, ", ")},
			{"IPv6 addresses", strings.Join(m.IPv6Addresses, ", ")},
			{"Failure", joinNonEmpty(": ", m.FailureReason, m.FailureMessage)},
		}); err != nil {
			return err
		}
		for _, c := range m.Conditions {
			fmt.Fprintf(a.out, "  Condition %s=%s  %s\n", c.Type, c.Status, joinNonEmpty(": ", c.Reason, c.Message))
		}
	} else {
		fmt.Fprintf(a.out, "  (Machine not shown: %s)\n", r.MachineError)
	}
	for _, w := range r.Workflows {
		fmt.Fprintf(a.out, "Workflow %s (%s)\n", w.WorkflowID, w.Type)
		fs := []field{
			{"Run", w.RunID},
			{"Status", w.Status},
			{"Started", timestamp(w.StartTime)},
		}
		if w.CloseTime != nil {
			fs = append(fs, field{"Closed", timestamp(*w.CloseTime)})
		}
		fs = append(fs, field{"KubevirtConfig", w.KubevirtConfig}, field{"Phase", w.Phase})
		if pr := w.Progress; pr != nil {
			fs = append(fs, field{"Step", pr.Step}, field{"Attempts", formatAttempts(pr.Attempts)}, field{"Last error", pr.LastError})
		} else {
			fs = append(fs, field{"Step", "unknown: " + w.QueryError})
		}
		if err := p.fields("  ", fs); err != nil {
			return err
		}
	}
	return nil
}

// formatAttempts lists attempts per step, sorted by step name.
func formatAttempts(attempts map[string]int) string {
	parts := make([]string, 0, len(attempts))
	for _, step := range slices.Sorted(maps.Keys(attempts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", step, attempts[step]))
	}
	return strings.Join(parts, " ")
}

func joinNonEmpty(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
}
