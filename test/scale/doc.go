// Package scale measures machineflow end to end at scale (make bench-e2e):
// provisioning many Machines, the cost of Machines at rest, and
// deprovisioning them. Everything is real but the hardware: the
// Temporal dev server, a supervisor and two KubeVirt API servers with
// their simulators, and the worker and controller as separate processes
// (internal/harness/stack).
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./test/scale -args -machines=200
//
// The benchmarks share one stack and run in this order, each using what
// the one before left (and making it when run alone):
//
//   - BenchmarkProvisionHistory: history events per provision for VMs
//     that boot at once and after a delay; they must be equal.
//   - BenchmarkProvision: -machines Machines provisioned through the
//     starter API with no controller running; Machines/s, start-to-Running
//     percentiles, events per provision, the worker's peak RSS, CPU and API
//     requests per Machine. Twice, each with a worker of its own:
//     limits=raised with the client rate limits (SUPERVISOR_QPS,
//     KUBEVIRT_QPS and their bursts) far above what the machine serves, so
//     the machine is the bound (its Machines are deprovisioned again),
//     then limits=default with the production defaults, which bind first.
//   - BenchmarkSteadyState: the controller started beside the worker
//     (from here on, the worker with the default limits);
//     once it has adopted the Running Machines, the API requests of both
//     per minute, beside the vitistack kubevirt-operator's requeue model.
//   - BenchmarkDeprovision: every Machine deleted and deprovisioned by the
//     controller; Machines/s and proof that nothing is left.
//
// They measure one pass each (-benchtime 1x; -count above 1 fails, as
// the Machines of the first pass are gone). Each figure comes from one
// run, with its correctness checked: a benchmark of a broken run fails
// rather than reports. Requests are
// counted by the processes themselves (client-go's
// rest_client_requests_total on their /metrics), so the simulators' and
// the benchmark's own traffic is not in them. CPU time per process
// (/proc) is logged for each section: on a shared two-core machine it
// says what the limit is, and the machine's total busy time says how much
// other users took.
package scale
