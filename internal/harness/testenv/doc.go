// Package testenv starts the real API servers every machineflow integration
// suite runs against: one supervisor cluster with the vitistack CRDs and N
// KubeVirt clusters (none with Options.SupervisorOnly), each with the CRDs
// of real KubeVirt, CDI and Multus installs, KubeVirt's own admission
// webhooks and a default StorageClass, registered on
// the supervisor as KubevirtConfigs with kubeconfig Secrets exactly as an
// operator would register them.
//
// Why it is shaped this way:
//
//   - Every cluster is its own kube-apiserver and etcd (controller-runtime
//     envtest), not namespaces in one server: per-cluster clients, kubeconfig
//     rotation and unreachable clusters are what the code under test deals
//     with, and they only exist with separate endpoints.
//
//   - The servers start concurrently, and a suite starts its Env once and
//     isolates tests by namespace or object name: starting one is the
//     costliest thing a test does (BenchmarkStart reports the figure).
//
//   - Binaries come from ./bin (built by `make tools` from Go modules), found
//     from the repository root, so `go test` works without KUBEBUILDER_ASSETS.
//     Setting KUBEBUILDER_ASSETS still overrides the directory.
//
//   - The supervisor's CRDs are the checked-in copy in deploy/crds/vitistack,
//     the same files that are deployed; a test fails when they drift from the
//     vitistack/common module in go.mod (fix: `make crds`).
//
//   - The kubeconfig handed to machineflow comes from a separate envtest user
//     in system:masters, never from the harness's own admin config, so code
//     under test authenticates like a real deployment.
//
//   - Suites get fresh, empty servers. The sandbox (`make run`) sets
//     Options.DataDir instead, so that its Machines and VMs survive a
//     restart as Temporal's history does; everything Start sets up is then
//     created only if absent, and only the etcd data persists: ports,
//     certificates and so the kubeconfig Secrets are new on every start.
//
//   - A cluster can go down alone and come back (Cluster.Stop, Cluster.Start)
//     on the same etcd data, address and CAs, so every client and kubeconfig
//     made for it works again, as after a real cluster's restart. That is
//     why each cluster's etcd data and certificates live in a directory of
//     testenv's rather than envtest's, which removes its own on every stop.
//     Cluster.AddUser makes further users, e.g. an RBAC-bound one whose
//     access a rotation test revokes.
//
//   - What KubeVirt refuses, these clusters refuse: its CRD schemas are
//     generated from the KubeVirt module (test/crds/kubevirt) and its
//     webhooks run in front of every KubeVirt API server
//     (internal/harness/kubevirtadmission), so a VM only our own code
//     accepts fails a test instead of a production cluster.
//
// Nothing here simulates KubeVirt itself: run internal/sim/kubevirtsim (through
// internal/harness/testenv/simulated) against the clusters for VMIs, phases and
// addresses.
package testenv
