// Package deploy tests the manifests under deploy/: every kustomization
// renders, every object it renders is accepted by a real API server, and
// the RBAC grants what the worker and the controller need and no more.
//
// Why it is shaped this way:
//
//   - Rendering uses kustomize's Go API (krusty) on the files on disk, the
//     code `kubectl apply -k` runs, so no kustomize binary is downloaded
//     and the tests see exactly what an installation gets.
//   - The checks that need no server (hardening, references between
//     objects, settings that the binaries' own loaders accept) run under
//     -short; they name the kustomization and object that is wrong.
//   - Acceptance is a server-side apply with dry-run against the testenv
//     supervisor, which has the vitistack CRDs (deploy/kubevirt-cluster
//     against a testenv KubeVirt cluster): apply is strict, so a misspelt
//     field fails, and Pod Security warnings (the namespace enforces
//     "restricted") count as failures too. The ServiceMonitor CRD is a
//     minimal stand-in kept in testdata.
//   - RBAC is proven by doing, not by reading rules: the RBAC objects are
//     applied for real and a client impersonating each ServiceAccount
//     performs the operations, expecting success or Forbidden. On a
//     KubeVirt cluster (deploy/kubevirt-cluster) the activities themselves
//     run with a token of the worker's ServiceAccount, and the calls they
//     make must be exactly what the ClusterRoles grant: a rule nothing
//     uses fails the test as much as a call no rule allows.
package deploy
