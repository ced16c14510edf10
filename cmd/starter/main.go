// Command starter starts, follows and inspects machineflow's workflows on
// Temporal. Run `starter --help` for the commands and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/machineflow/machineflow/internal/cli"
)

func main() {
	// Ctrl-C stops waiting; the workflow keeps running on the server.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}
