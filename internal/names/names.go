// Package names holds the identifiers that machineflow shares with the
// supervisor cluster, the KubeVirt clusters and the other vitistack
// components. They are contracts: changing one breaks
// objects that already exist.
package names

const (
	// PlacementAnnotation on a Machine records the KubevirtConfig that hosts
	// its VirtualMachine. It is written once placement is decided and left in
	// place after deprovisioning, for audit.
	PlacementAnnotation = "vitistack.io/kubevirt-config"

	// Namespace is the namespace machineflow is deployed to (deploy/base):
	// the default home of the kubeconfig Secrets whose KubevirtConfig names
	// none, and of the controller's leader election Lease. Never a
	// tenant's.
	Namespace = "machineflow-system"

	// Finalizer keeps a Machine until its DeprovisionMachine workflow has
	// completed.
	Finalizer = "machine.vitistack.io/finalizer"

	// ManagedByLabel and SourceMachineLabel are set on every object that
	// machineflow creates on a KubeVirt cluster. Deletion only ever touches
	// objects that carry ManagedByLabel=ManagedByValue.
	ManagedByLabel     = "vitistack.io/managed-by"
	ManagedByValue     = "machineflow"
	SourceMachineLabel = "vitistack.io/source-machine"

	// ProviderKubevirt is the only non-empty spec.provider machineflow handles.
	ProviderKubevirt = "kubevirt"

	// KubeconfigSecretKey is the data key of a KubevirtConfig's Secret.
	KubeconfigSecretKey = "kubeconfig"

	// ForceDeprovisionAnnotation set to "true" on a Machine makes its
	// deprovision give up on remote cleanup that fails (a KubeVirt cluster
	// that is gone for good), so the finalizer is released.
	ForceDeprovisionAnnotation = "machineflow.io/force-deprovision"

	// VMAnnotationPrefix marks Machine annotations that are copied verbatim
	// onto the VirtualMachine, so users can pass hints to KubeVirt (and tests
	// to the simulator) without a new API field.
	VMAnnotationPrefix = "vm.machineflow.io/"
)

// Search attributes (all of type Keyword) that the workflows upsert and the
// Temporal namespace must have registered, so the UI and
// `temporal workflow list --query` can filter by Machine, cluster and phase.
const (
	SearchAttrMachineNamespace = "MachineNamespace"
	SearchAttrMachineName      = "MachineName"
	SearchAttrKubevirtConfig   = "KubevirtConfig"
	SearchAttrMachinePhase     = "MachinePhase"
)

// KeywordSearchAttributes lists the search attributes to register.
func KeywordSearchAttributes() []string {
	return []string{SearchAttrMachineNamespace, SearchAttrMachineName, SearchAttrKubevirtConfig, SearchAttrMachinePhase}
}

// Machine annotations of the ISO cleanup. The two triggers
// are set by whoever installs the OS; machineflow only reads them.
const (
	CDROMEjectedAnnotation = "vitistack.io/cdrom-ejected"
	OSInstalledAnnotation  = "vitistack.io/os-installed"
	// ISOCleanedUpAnnotation is written by the EjectISO workflow once the ISO is gone.
	ISOCleanedUpAnnotation = "vitistack.io/iso-cleaned-up"
)

// ISOCleanupTriggered says whether a Machine's annotations ask for its ISO
// to be removed: the CD-ROM was ejected or the OS is installed.
func ISOCleanupTriggered(annotations map[string]string) bool {
	return annotations[CDROMEjectedAnnotation] == "true" || annotations[OSInstalledAnnotation] == "true"
}

// ISOCleanupPending says whether a Machine asks for its ISO to be removed
// and the CleanupISO activity has not recorded doing so.
func ISOCleanupPending(annotations map[string]string) bool {
	return ISOCleanupTriggered(annotations) && annotations[ISOCleanedUpAnnotation] != "true"
}

// Machine annotations that select an ISO boot: the VM boots
// from spec.os.imageID through a DataVolume when BootSourceAnnotation is
// BootSourceDataVolume; BootSourceTypeAnnotation is http (default), https
// or registry.
const (
	BootSourceAnnotation     = "kubevirt.io/boot-source"
	BootSourceTypeAnnotation = "kubevirt.io/boot-source-type"
	BootSourceDataVolume     = "datavolume"
)

// HandlesProvider reports whether a Machine with this spec.provider is ours.
func HandlesProvider(provider string) bool {
	return provider == "" || provider == ProviderKubevirt
}

// ManagedLabels are the labels every object created for machine carries.
func ManagedLabels(machine string) map[string]string {
	return map[string]string{ManagedByLabel: ManagedByValue, SourceMachineLabel: machine}
}
