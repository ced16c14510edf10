package cli

import (
	"strings"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/workflows"
)

// parseMachineRef reads NAMESPACE/NAME and validates both parts the way the
// workflows do, so a typo is a usage error before anything is started.
func parseMachineRef(arg string) (contract.MachineRef, error) {
	ns, name, ok := strings.Cut(arg, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return contract.MachineRef{}, usageErrorf("Machine %q: want NAMESPACE/NAME, e.g. default/vm1", arg)
	}
	ref := contract.MachineRef{Namespace: ns, Name: name}
	if err := (workflows.DeprovisionInput{Namespace: ns, Name: name}).Validate(); err != nil {
		return ref, usageErrorf("Machine %q: %s", arg, oneLine(err))
	}
	return ref, nil
}

// oneLine joins the lines of a multi-error, so every error is one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
