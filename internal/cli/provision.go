package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/machineflow/machineflow/workflows"
)

// Started is what provision, deprovision and health-check print when they
// do not wait.
type Started struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	// Started is false when a run was already open and is reused.
	Started bool `json:"started"`
}

func (a *app) provisionCommand() *cobra.Command {
	var (
		in workflows.ProvisionInput
		w  waitFlags
	)
	cmd := &cobra.Command{
		Use:   "provision NAMESPACE/NAME",
		Short: "Provision a Machine: start its ProvisionMachine workflow",
		Long: `Start the ProvisionMachine workflow of a Machine (workflow ID
provision/NAMESPACE/NAME). While one is open for the Machine it is reused,
not started twice; a closed one (e.g. failed) is started again.

With --wait, the steps are shown as they progress, then the result: the
cluster and the VM's addresses. A failed provisioning prints its reason
and exits 1.`,
		Example: `  # start and return at once
  starter provision default/vm1

  # place the VM on cluster kubevirt-1 and wait until it runs
  starter provision default/vm1 --config kubevirt-1 --wait

  # give the VM 30 minutes to boot; print the result as JSON
  starter provision default/vm1 --boot-timeout 30m --wait -o json`,
		Args: machineArg,
		RunE: a.run(func(ctx context.Context, args []string) error {
			ref, _ := parseMachineRef(args[0]) // checked by machineArg
			in.Namespace, in.Name = ref.Namespace, ref.Name
			if err := in.Validate(); err != nil {
				return usageErrorf("provision %s: %s", args[0], flagNames(oneLine(err)))
			}
			if err := w.validate(); err != nil {
				return err
			}
			return a.withClient(ctx, func(c client.Client) error {
				id := workflows.ProvisionWorkflowID(in.Namespace, in.Name)
				open, err := openRun(ctx, c, id)
				if err != nil {
					return err
				}
				run, err := a.starter(c).StartProvision(ctx, in)
				if err != nil {
					return err
				}
				if open != "" && (in.KubevirtConfig != "" || in.BootTimeout != "") {
					a.printer().note("note: %s was already running; it keeps the input it was started with", id)
				}
				var res workflows.ProvisionResult
				return a.startedOrWait(ctx, c, run, open == "", w, true, &res, func() error { return a.printProvisionResult(res) })
			})
		}),
	}
	cmd.Flags().StringVar(&in.KubevirtConfig, "config", "", "KubevirtConfig (cluster) to place the Machine on; default: the placement rules")
	cmd.Flags().StringVar(&in.BootTimeout, "boot-timeout", "", "how long the VM may take to reach Running, e.g. 15m (default 15m)")
	w.bind(cmd)
	return cmd
}

func (a *app) deprovisionCommand() *cobra.Command {
	var (
		force bool
		w     waitFlags
	)
	cmd := &cobra.Command{
		Use:   "deprovision NAMESPACE/NAME",
		Short: "Deprovision a Machine: start its DeprovisionMachine workflow",
		Long: `Start the DeprovisionMachine workflow of a Machine (workflow ID
deprovision/NAMESPACE/NAME): it cancels an open provisioning, then deletes
the VM, its volumes and network on the KubeVirt cluster and the
NetworkConfiguration on the supervisor. An open deprovision is reused.

--force gives up on remote cleanup when the cluster cannot be reached,
reporting what was left behind. If a deprovision is already running,
--force sends it the "force" update instead of starting a new one.`,
		Example: `  # delete everything of default/vm1 and wait until it is gone
  starter deprovision default/vm1 --wait

  # the cluster is gone for good: stop retrying a running deprovision
  starter deprovision default/vm1 --force --wait`,
		Args: machineArg,
		RunE: a.run(func(ctx context.Context, args []string) error {
			ref, _ := parseMachineRef(args[0]) // checked by machineArg
			if err := w.validate(); err != nil {
				return err
			}
			return a.withClient(ctx, func(c client.Client) error {
				id := workflows.DeprovisionWorkflowID(ref.Namespace, ref.Name)
				open, err := openRun(ctx, c, id)
				if err != nil {
					return err
				}
				var run client.WorkflowRun
				if open != "" && force {
					if run, err = sendForce(ctx, c, id, open); err != nil {
						return err
					}
					a.printer().note("sent %q to the running %s", workflows.ForceUpdate, id)
				} else {
					in := workflows.DeprovisionInput{Namespace: ref.Namespace, Name: ref.Name, Force: force}
					if run, err = a.starter(c).StartDeprovision(ctx, in); err != nil {
						return err
					}
				}
				var res workflows.DeprovisionResult
				return a.startedOrWait(ctx, c, run, open == "", w, true, &res, func() error { return a.printDeprovisionResult(res) })
			})
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "give up on remote cleanup when the cluster cannot be reached (sent as an update to a running deprovision)")
	w.bind(cmd)
	return cmd
}

// openRun returns the run ID of the open workflow with this ID, or "".
func openRun(ctx context.Context, c client.Client, id string) (string, error) {
	desc, err := c.DescribeWorkflow(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("describe workflow %s: %w", id, err)
	}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", nil
	}
	return desc.WorkflowExecution.RunID, nil
}

// sendForce sends the force update to an open deprovision and waits until
// the workflow has accepted it.
func sendForce(ctx context.Context, c client.Client, id, runID string) (client.WorkflowRun, error) {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		RunID:        runID,
		UpdateName:   workflows.ForceUpdate,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("send %q to workflow %s: %w", workflows.ForceUpdate, id, err)
	}
	return c.GetWorkflow(ctx, id, runID), nil
}

// startedOrWait prints that the run started (or was already open) and,
// with --wait, follows it and prints the outcome through printResult
// (table) or as JSON.
func (a *app) startedOrWait(ctx context.Context, c client.Client, run client.WorkflowRun, started bool, w waitFlags, poll bool, result any, printResult func() error) error {
	p := a.printer()
	s := Started{WorkflowID: run.GetID(), RunID: run.GetRunID(), Started: started}
	if !w.wait {
		if p.json() {
			return p.writeJSON(s)
		}
		fmt.Fprintf(a.out, "workflow %s %s (run %s)\n", s.WorkflowID, startedWord(started), s.RunID)
		return nil
	}
	if !p.json() {
		fmt.Fprintf(a.out, "workflow %s %s (run %s); waiting\n", s.WorkflowID, startedWord(started), s.RunID)
	}
	o, err := a.follow(ctx, c, run, w, poll, result)
	if err != nil {
		return err
	}
	if p.json() {
		if err := p.writeJSON(o); err != nil {
			return err
		}
		return failed(o)
	}
	if o.Status != "Completed" {
		return failed(o)
	}
	fmt.Fprintf(a.out, "workflow %s completed\n", o.WorkflowID)
	return printResult()
}

func startedWord(started bool) string {
	if started {
		return "started"
	}
	return "already running"
}

func (a *app) printProvisionResult(r workflows.ProvisionResult) error {
	return a.printer().fields("  ", []field{
		{"KubevirtConfig", r.KubevirtConfig},
		{"VirtualMachine", r.VMNamespace + "/" + r.VMName},
		{"IP addresses", strings.Join(r.IPAddresses, ", ")},
		{"IPv6 addresses", strings.Join(r.IPv6Addresses, ", ")},
	})
}

func (a *app) printDeprovisionResult(r workflows.DeprovisionResult) error {
	fs := []field{
		{"KubevirtConfig", orDash(r.KubevirtConfig)},
		{"Deleted", orDash(strings.Join(r.Deleted, ", "))},
		{"Not deleted", strings.Join(r.NotDeleted, ", ")},
	}
	if r.Forced {
		fs = append(fs, field{"Forced", "yes: remote cleanup was given up on"})
	}
	return a.printer().fields("  ", fs)
}

// flagNames turns the input's JSON field names in a validation message
// into the flags that set them.
func flagNames(msg string) string {
	return strings.NewReplacer("kubevirtConfig ", "--config ", "bootTimeout ", "--boot-timeout ").Replace(msg)
}
