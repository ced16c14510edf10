package workflows

import (
	"testing"

	"go.temporal.io/sdk/testsuite"
)

// BenchmarkProvisionMachine runs a successful provision in the test
// environment: the cost of the workflow code and its 17 activities, without
// a Temporal service. The history size of the same run on the dev server
// is logged by TestOnDevServer.
func BenchmarkProvisionMachine(b *testing.B) {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger())
	b.ReportAllocs()
	for b.Loop() {
		env := ts.NewTestWorkflowEnvironment()
		newFakes().register(env)
		RegisterWorkflows(env)
		env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
		if err := env.GetWorkflowError(); err != nil {
			b.Fatal(err)
		}
	}
}
