// Package mockmode is the worker's CLIENT_MANAGER=mock: everything the
// worker would find in Kubernetes, in memory, so that a person can run the
// workflows against a Temporal dev server alone:
//
//	bin/temporal server start-dev
//	worker --client-manager=mock
//	temporal workflow start --type ProvisionMachine --task-queue machineflow \
//	    --input '{"namespace":"default","name":"demo-1"}'
//
// The supervisor is a controller-runtime fake client (internal/scheme, with
// the status subresource of Machine and KubevirtConfig as on a real API
// server) seeded with the demo objects below. Each KubevirtConfig gets its
// own fake cluster client, served by a clients.MockClientManager, and its
// own kubevirtsim.Simulator that boots the VMs the activities create. State
// lives as long as the process: restarting the worker starts from the seed
// again.
//
// Demo objects, all in namespace "default":
//   - KubevirtConfigs demo-a (the default for Machines without the
//     placement annotation, unless DEFAULT_KUBEVIRT_CONFIG says otherwise)
//     and demo-b;
//   - MachineClass small (1 core, 2 GiB) and NetworkNamespace default (pod
//     network, DHCP);
//   - Machines demo-1 and demo-2 (placed on the default config), demo-3
//     (annotated for demo-b) and demo-fail, whose VM never boots
//     (ErrImagePull), to show a failed provisioning and its compensation.
package mockmode
