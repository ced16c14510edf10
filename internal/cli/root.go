package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/machineflow/machineflow/internal/config/envflag"
	"github.com/machineflow/machineflow/internal/temporalclient"
	"github.com/machineflow/machineflow/workflows"
)

// app is the state one invocation of the CLI shares between commands.
type app struct {
	temporal   temporalclient.Options
	taskQueue  string
	output     string
	kubeconfig string
	binder     *envflag.Binder
	out        io.Writer
	errOut     io.Writer
	// ran is set once a command's own code runs: errors returned before
	// that come from argument parsing and are usage errors.
	ran bool
}

// Main runs the CLI with args (without the program name) and returns the
// process's exit code. lookupEnv is os.LookupEnv outside tests.
func Main(ctx context.Context, args []string, out, errOut io.Writer, lookupEnv func(string) (string, bool)) int {
	a := &app{out: out, errOut: errOut}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(errOut)

	err := a.binder.ApplyEnv(lookupEnv)
	if err == nil {
		err = root.ExecuteContext(ctx)
	} else {
		err = withCode(ExitUsage, err)
	}
	if err == nil {
		return ExitOK
	}
	if !a.ran {
		err = withCode(ExitUsage, err)
	}
	code := exitCode(err)
	fmt.Fprintf(errOut, "error: %s\n", oneLine(err))
	if code == ExitUsage {
		fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", commandPath(root, args))
	}
	return code
}

// commandPath is the command the arguments select ("starter provision"),
// for the usage hint.
func commandPath(root *cobra.Command, args []string) string {
	if cmd, _, err := root.Find(args); err == nil {
		return cmd.CommandPath()
	}
	return root.CommandPath()
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "starter",
		Short: "Start and follow machineflow's workflows on Temporal",
		Long: `starter starts, follows and inspects machineflow's workflows: the
ProvisionMachine and DeprovisionMachine of vitistack Machines, and the
ClusterHealthCheck of the KubeVirt clusters, on Temporal.

Connection settings come from flags or, when a flag is not given, from the
environment variable named in its help.

` + exitCodesHelp,
		Example: `  # provision a Machine and follow its steps until the VM runs
  starter provision default/vm1 --wait

  # what is going on with it
  starter status default/vm1

  # every failed provisioning on cluster kubevirt-1, as JSON
  starter list --config kubevirt-1 --phase Failed -o json`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.CompletionOptions.DisableDefaultCmd = true

	gofs := flag.NewFlagSet("starter", flag.ContinueOnError)
	a.binder = envflag.New(gofs)
	a.temporal.Bind(a.binder)
	a.binder.String(&a.taskQueue, "task-queue", "TASK_QUEUE", workflows.DefaultTaskQueue, "task queue the workflows are started on")
	root.PersistentFlags().AddGoFlagSet(gofs)
	root.PersistentFlags().StringVarP(&a.output, "output", "o", formatTable, "output format: table or json")
	root.PersistentFlags().StringVar(&a.kubeconfig, "kubeconfig", "", "kubeconfig of the supervisor cluster, for the Machine's status [$KUBECONFIG]")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(ExitUsage, err) })

	root.AddCommand(
		a.provisionCommand(),
		a.deprovisionCommand(),
		a.statusCommand(),
		a.listCommand(),
		a.healthCheckCommand(),
		a.scheduleCommand(),
	)
	return root
}

// run wraps a command's code: it checks -o, marks that arguments were
// parsed, and hands the command its context.
func (a *app) run(fn func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		if err := validateFormat(a.output); err != nil {
			return err
		}
		return fn(cmd.Context(), args)
	}
}

func (a *app) printer() printer {
	return printer{out: a.out, errOut: a.errOut, format: a.output}
}

func (a *app) starter(c client.Client) workflows.Starter {
	return workflows.Starter{Client: c, TaskQueue: a.taskQueue}
}

// dial connects to Temporal within --temporal-connect-timeout. Invalid
// settings are usage errors; a server that does not answer is
// ExitUnreachable.
func (a *app) dial(ctx context.Context) (client.Client, error) {
	if _, err := a.temporal.ClientOptions(nil, nil); err != nil {
		return nil, withCode(ExitUsage, err)
	}
	// The SDK's default logger writes INFO lines to stdout, which would mix
	// with the results; errors are reported by the commands themselves.
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(a.errOut, &slog.HandlerOptions{Level: slog.LevelError})))
	c, err := temporalclient.Dial(ctx, a.temporal, logger, nil)
	if err != nil {
		return nil, withCode(ExitUnreachable, err)
	}
	return c, nil
}

// withClient dials, runs fn and closes the client.
func (a *app) withClient(ctx context.Context, fn func(client.Client) error) error {
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// machineArg accepts exactly one NAMESPACE/NAME argument.
func machineArg(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("want one argument NAMESPACE/NAME, got %d", len(args))
	}
	_, err := parseMachineRef(args[0])
	return err
}

// noArgs rejects positional arguments with a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q", args[0])
	}
	return nil
}
