// Package vmplan turns a Machine into what machineflow makes for it: the
// validated MachinePlan (Machine + MachineClass + NetworkNamespace), and
// from a plan the VirtualMachine, its PVCs, its bridge
// NetworkAttachmentDefinition, its cloud-init Secret and the cloud-init
// network data of a static allocation.
//
// It does no I/O: the activities read the objects and pass them in, so
// every rule here is table- and fuzz-tested without a cluster, and a plan
// can be rebuilt from history alone. Refusals are SpecError (final: a
// retry reads the same Machine) or WaitingError (something referenced does
// not exist yet); their messages name the Machine and the field and never
// quote a payload or a credential, because they reach history and the
// Machine's status.
//
// The shapes follow the vitistack kubevirt-operator, so tooling that reads
// its VMs keeps working; where it differs, on purpose: a Machine may have
// at most one boot disk; cloud-init type configDrive is refused instead of
// ignored; names longer than a label value, CPU topologies beyond the
// Machine's bounds and VLAN ids above 4094 are refused at planning rather
// than left to fail at boot; untagged bridge NADs carry no "vlan" key;
// cloud-init is in a Secret the VM references, never inline in the VM.
package vmplan
