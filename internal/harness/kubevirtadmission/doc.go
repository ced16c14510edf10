// Package kubevirtadmission runs KubeVirt's own admission webhooks in front
// of one test or sandbox API server: the kubevirt-webhook binary (built
// from kubevirt.io/kubevirt in hack/tools/kubevirt) serves virt-api's
// admitters and mutators and registers them as virt-operator does, with
// failurePolicy Fail.
//
// A started Server is proven live, not just running: Start returns only
// once the API server refuses, with KubeVirt's own message, a dry-run
// VirtualMachine that KubeVirt refuses. Until then a test could create a
// VM that real KubeVirt would not accept.
package kubevirtadmission
