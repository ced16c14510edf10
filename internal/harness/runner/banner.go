package runner

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

// banner tells the person at the terminal what to open and try. Every
// command in it runs as printed from the directory make run was started in.
func (r *runner) banner() {
	dir := r.opts.Dir
	supervisor := filepath.Join(dir, "supervisor.kubeconfig")
	starter := filepath.Join(r.opts.BinDir, "starter")
	// The starter and the temporal CLI default to localhost:7233.
	if addr := r.temporalAddress(); addr != "127.0.0.1:7233" && addr != temporalclient.DefaultAddress {
		starter += " --temporal-address " + addr
	}
	temporal := r.opts.TemporalCLI + " workflow list --address " + r.temporalAddress()

	var b strings.Builder
	b.WriteString("\nmachineflow is running. Ctrl-C stops everything.\n\n")
	if !r.opts.Headless {
		fmt.Fprintf(&b, "  Temporal web UI        http://localhost:%d/namespaces/default/workflows\n", r.opts.UIPort)
	}
	fmt.Fprintf(&b, "  watch the Machines     kubectl --kubeconfig %s get machines -w\n", supervisor)
	fmt.Fprintf(&b, "  the VMs they became    kubectl --kubeconfig %s get vm,vmi -A\n", filepath.Join(dir, testenv.ClusterName(1)+".kubeconfig"))
	fmt.Fprintf(&b, "  without kubectl        %s list\n", starter)
	fmt.Fprintf(&b, "  one Machine's story    %s --kubeconfig %s status default/demo-small\n", starter, supervisor)
	fmt.Fprintf(&b, "  delete one             kubectl --kubeconfig %s delete machine demo-small\n", supervisor)
	fmt.Fprintf(&b, "  health-check schedule  %s schedule show\n", starter)
	fmt.Fprintf(&b, "  registered provider    kubectl --kubeconfig %s get machineproviders,vitistacks\n", supervisor)
	fmt.Fprintf(&b, "  workflows              %s\n", temporal)
	for _, m := range r.metrics {
		fmt.Fprintf(&b, "  metrics                %s\n", m)
	}
	fmt.Fprintf(&b, "  more Machines          kubectl --kubeconfig %s apply -f examples/\n\n", supervisor)
	_ = r.out.write([]byte(b.String()))
}
