package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vitistack/common/pkg/v1alpha1"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/workflows"
)

// workflowTypes maps --type to workflow types.
var workflowTypes = map[string]string{
	"provision":    workflows.ProvisionMachineName,
	"deprovision":  workflows.DeprovisionMachineName,
	"health-check": workflows.ClusterHealthCheckName,
}

// machinePhases are the values --phase accepts.
var machinePhases = []string{
	v1alpha1.MachinePhasePending, v1alpha1.MachinePhaseCreating, v1alpha1.MachinePhaseRunning,
	v1alpha1.MachinePhaseStopping, v1alpha1.MachinePhaseStopped, v1alpha1.MachinePhaseTerminating,
	v1alpha1.MachinePhaseTerminated, v1alpha1.MachinePhaseFailed,
}

// listFilter is what list selects by.
type listFilter struct {
	machine, config, phase, workflowType string
	open                                 bool
	limit                                int
}

// WorkflowSummary is one row of list.
type WorkflowSummary struct {
	WorkflowID       string     `json:"workflowId"`
	RunID            string     `json:"runId"`
	Type             string     `json:"type"`
	Status           string     `json:"status"`
	MachineNamespace string     `json:"machineNamespace,omitempty"`
	MachineName      string     `json:"machineName,omitempty"`
	KubevirtConfig   string     `json:"kubevirtConfig,omitempty"`
	Phase            string     `json:"phase,omitempty"`
	StartTime        time.Time  `json:"startTime"`
	CloseTime        *time.Time `json:"closeTime,omitempty"`
}

func (a *app) listCommand() *cobra.Command {
	var f listFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List open and recent workflows, filtered by Machine, cluster and phase",
		Long: `List machineflow's workflows, newest first, open and closed (as long as
the namespace's retention keeps them). The filters are the search
attributes the workflows set: MachineNamespace and MachineName (--machine),
KubevirtConfig (--config) and MachinePhase (--phase).`,
		Example: `  # everything of one Machine
  starter list --machine default/vm1

  # provisionings running now on kubevirt-1
  starter list --type provision --config kubevirt-1 --open

  # failed Machines, as JSON
  starter list --phase Failed -o json`,
		Args: noArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			query, err := f.query()
			if err != nil {
				return err
			}
			return a.withClient(ctx, func(c client.Client) error {
				rows, err := listWorkflows(ctx, c, query, f.limit)
				if err != nil {
					return err
				}
				return a.printList(rows)
			})
		}),
	}
	cmd.Flags().StringVar(&f.machine, "machine", "", "only workflows of this Machine, NAMESPACE/NAME")
	cmd.Flags().StringVar(&f.config, "config", "", "only workflows on this KubevirtConfig")
	cmd.Flags().StringVar(&f.phase, "phase", "", "only workflows whose Machine phase is this: "+strings.Join(machinePhases, ", "))
	cmd.Flags().StringVar(&f.workflowType, "type", "", "only this workflow type: provision, deprovision or health-check")
	cmd.Flags().BoolVar(&f.open, "open", false, "only running workflows")
	cmd.Flags().IntVar(&f.limit, "limit", 50, "show at most this many workflows")
	return cmd
}

// query validates the filter and builds the visibility query. Every
// value is validated to a DNS name or a known keyword before it is
// quoted, so none can break out of its string literal.
func (f listFilter) query() (string, error) {
	if f.limit <= 0 {
		return "", usageErrorf("--limit %d: must be positive", f.limit)
	}
	var clauses []string
	if f.workflowType != "" {
		t, ok := workflowTypes[f.workflowType]
		if !ok {
			return "", usageErrorf("--type %q: want provision, deprovision or health-check", f.workflowType)
		}
		clauses = append(clauses, fmt.Sprintf("WorkflowType = '%s'", t))
	} else {
		clauses = append(clauses, fmt.Sprintf("WorkflowType IN ('%s', '%s', '%s')",
			workflows.ProvisionMachineName, workflows.DeprovisionMachineName, workflows.ClusterHealthCheckName))
	}
	if f.machine != "" {
		ref, err := parseMachineRef(f.machine)
		if err != nil {
			return "", usageErrorf("--machine: %s", oneLine(err))
		}
		clauses = append(clauses,
			fmt.Sprintf("%s = '%s'", names.SearchAttrMachineNamespace, ref.Namespace),
			fmt.Sprintf("%s = '%s'", names.SearchAttrMachineName, ref.Name))
	}
	if f.config != "" {
		if msgs := validation.IsDNS1123Subdomain(f.config); len(msgs) > 0 {
			return "", usageErrorf("--config %q: %s", f.config, strings.Join(msgs, "; "))
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", names.SearchAttrKubevirtConfig, f.config))
	}
	if f.phase != "" {
		if !slices.Contains(machinePhases, f.phase) {
			return "", usageErrorf("--phase %q: want one of %s", f.phase, strings.Join(machinePhases, ", "))
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", names.SearchAttrMachinePhase, f.phase))
	}
	if f.open {
		clauses = append(clauses, "ExecutionStatus = 'Running'")
	}
	return strings.Join(clauses, " AND "), nil
}

// listWorkflows pages through the visibility query up to limit rows.
func listWorkflows(ctx context.Context, c client.Client, query string, limit int) ([]WorkflowSummary, error) {
	rows := []WorkflowSummary{}
	var token []byte
	for len(rows) < limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         query,
			PageSize:      int32(min(limit-len(rows), 100)),
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list workflows (query %q): %w", query, err)
		}
		for _, info := range resp.GetExecutions() {
			if len(rows) == limit {
				break
			}
			rows = append(rows, summarize(info))
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return rows, nil
}

func summarize(info *workflowpb.WorkflowExecutionInfo) WorkflowSummary {
	attrs := info.GetSearchAttributes()
	s := WorkflowSummary{
		WorkflowID:       info.GetExecution().GetWorkflowId(),
		RunID:            info.GetExecution().GetRunId(),
		Type:             info.GetType().GetName(),
		Status:           info.GetStatus().String(),
		MachineNamespace: keyword(attrs, names.SearchAttrMachineNamespace),
		MachineName:      keyword(attrs, names.SearchAttrMachineName),
		KubevirtConfig:   keyword(attrs, names.SearchAttrKubevirtConfig),
		Phase:            keyword(attrs, names.SearchAttrMachinePhase),
		StartTime:        info.GetStartTime().AsTime(),
	}
	// An open run has no close time.
	if info.GetCloseTime() != nil {
		closed := info.GetCloseTime().AsTime()
		s.CloseTime = &closed
	}
	return s
}

// keyword decodes a Keyword search attribute; "" when unset.
func keyword(attrs *commonpb.SearchAttributes, name string) string {
	p, ok := attrs.GetIndexedFields()[name]
	if !ok {
		return ""
	}
	var v string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
		return ""
	}
	return v
}

func (a *app) printList(rows []WorkflowSummary) error {
	p := a.printer()
	if p.json() {
		return p.writeJSON(rows)
	}
	if len(rows) == 0 {
		p.note("no workflows found")
		return nil
	}
	table := make([][]string, len(rows))
	for i, r := range rows {
		closed := "-"
		if r.CloseTime != nil {
			closed = timestamp(*r.CloseTime)
		}
		table[i] = []string{r.WorkflowID, r.Type, r.Status, orDash(r.Phase), orDash(r.KubevirtConfig), timestamp(r.StartTime), closed}
	}
	return p.table([]string{"WORKFLOW ID", "TYPE", "STATUS", "PHASE", "CONFIG", "STARTED", "CLOSED"}, table)
}
