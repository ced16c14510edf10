package layout_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/machineflow/machineflow/"

// deps lists the packages pkg links, as the go tool resolves them.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+pkg).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}

// requireNoLinks fails for every package pkg links that forbidden names,
// with why as the reason.
func requireNoLinks(t *testing.T, pkg, why string, forbidden func(dep string) bool) {
	t.Helper()
	linked := deps(t, pkg)
	if len(linked) == 0 {
		t.Fatalf("go list -deps %s listed nothing", pkg)
	}
	for _, p := range linked {
		if forbidden(p) {
			t.Errorf("%s links %s: %s", pkg, p, why)
		}
	}
}

func TestProductionBinariesLinkNoHarness(t *testing.T) {
	for _, bin := range []string{"cmd/worker", "cmd/controller", "cmd/starter"} {
		t.Run(bin, func(t *testing.T) {
			requireNoLinks(t, bin, "harness code is for tests, make run and make bench only", func(p string) bool {
				return strings.HasPrefix(p, module+"internal/harness/")
			})
			// Only the worker's mock mode may carry the simulator.
			if bin != "cmd/worker" {
				requireNoLinks(t, bin, "only the worker's mock mode carries the simulator", func(p string) bool {
					return strings.HasPrefix(p, module+"internal/sim/")
				})
			}
		})
	}
}

// Workflows reach activities by name through the contract package; linking
// a Kubernetes client would let a workflow do I/O outside an activity.
func TestWorkflowsLinkNoKubernetesClient(t *testing.T) {
	for _, pkg := range []string{"workflows", "activities/contract"} {
		requireNoLinks(t, pkg, "workflows may depend on the contract types only", func(p string) bool {
			return strings.HasPrefix(p, "k8s.io/client-go/") || strings.HasPrefix(p, "sigs.k8s.io/controller-runtime") ||
				p == module+"activities" || p == module+"clients"
		})
	}
}

// The planners, the status mapping and the controller's decisions are
// pure: everything they need is passed in. controller-runtime's scheme
// builder is the one part of it they may link, through vitistack's API
// types; it does no I/O.
func TestPlannersLinkNoClient(t *testing.T) {
	for _, pkg := range []string{"internal/vmplan", "internal/vmstatus", "controller/decide"} {
		requireNoLinks(t, pkg, "planners take what they need as arguments", func(p string) bool {
			return strings.HasPrefix(p, "k8s.io/client-go/") || strings.HasPrefix(p, "go.temporal.io/") ||
				(strings.HasPrefix(p, "sigs.k8s.io/controller-runtime") && p != "sigs.k8s.io/controller-runtime/pkg/scheme")
		})
	}
}
