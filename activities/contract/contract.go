package contract

import (
	"encoding/json"
	"fmt"
	"time"
)

// Activity names. Each is the name of an exported method of
// activities.Activities, so registering that struct with a worker registers
// them all under these names; workflows schedule activities by name.
const (
	ResolvePlacementName           = "ResolvePlacement"
	ValidateClusterName            = "ValidateCluster"
	LoadMachineName                = "LoadMachine"
	EnsureNamespaceName            = "EnsureNamespace"
	EnsureVolumesName              = "EnsureVolumes"
	EnsureNetworkName              = "EnsureNetwork"
	EnsureVirtualMachineName       = "EnsureVirtualMachine"
	WaitForVirtualMachineName      = "WaitForVirtualMachine"
	UpdateMachineStatusName        = "UpdateMachineStatus"
	LookupPlacementName            = "LookupPlacement"
	DeleteVirtualMachineName       = "DeleteVirtualMachine"
	DeleteVolumesName              = "DeleteVolumes"
	DeleteNetworkName              = "DeleteNetwork"
	DeleteNetworkConfigurationName = "DeleteNetworkConfiguration"
	ListClustersName               = "ListClusters"
	CheckClusterName               = "CheckCluster"
	RecordClusterHealthName        = "RecordClusterHealth"
	InvalidateClusterClientName    = "InvalidateClusterClient"
	CleanupISOName                 = "CleanupISO"
)

// Application error types returned by activities. Every type listed by
// NonRetryableErrorTypes is final: retrying cannot fix it, so workflows stop
// (and compensate) instead of retrying.
const (
	ErrTypeInvalidSpec         = "InvalidMachineSpec"
	ErrTypeUnsupportedProvider = "UnsupportedProvider"
	ErrTypeMachineNotFound     = "MachineNotFound"
	ErrTypeConfigNotFound      = "KubevirtConfigNotFound"
	ErrTypeInvalidKubeconfig   = "InvalidKubeconfig"
	ErrTypeUnauthorized        = "ClusterUnauthorized"
	ErrTypeKubeVirtMissing     = "KubeVirtAPIMissing"
	ErrTypeAmbiguousPlacement  = "AmbiguousPlacement"
	ErrTypeConflict            = "ObjectConflict"
	ErrTypeBootFailed          = "VMBootFailed"
	// ErrTypeStorageClassNotFound: the cluster has neither the configured
	// STORAGE_CLASS_NAME nor a default StorageClass.
	ErrTypeStorageClassNotFound = "StorageClassNotFound"
	// ErrTypeClusterUnreachable is retryable: the cluster may come back.
	ErrTypeClusterUnreachable = "ClusterUnreachable"
	// ErrTypeWaiting is retryable: something the Machine references (a
	// cloud-init Secret or ConfigMap, a static IP allocation) does not exist
	// yet. The vitistack kubevirt-operator requeued in this case; the workflow's retry policy
	// bounds how long we wait.
	ErrTypeWaiting = "WaitingForDependency"
)

// Machine phases, as vitistack defines them (v1alpha1.MachinePhase*).
// They are restated because vitistack's API package pulls
// controller-runtime into every importer, and workflows must not link it;
// a test keeps the two lists equal.
const (
	PhasePending     = "Pending"
	PhaseCreating    = "Creating"
	PhaseRunning     = "Running"
	PhaseStopping    = "Stopping"
	PhaseStopped     = "Stopped"
	PhaseTerminating = "Terminating"
	PhaseTerminated  = "Terminated"
	PhaseFailed      = "Failed"
)

// NonRetryableErrorTypes is the list for RetryPolicy.NonRetryableErrorTypes.
func NonRetryableErrorTypes() []string {
	return []string{
		ErrTypeInvalidSpec, ErrTypeUnsupportedProvider, ErrTypeMachineNotFound,
		ErrTypeConfigNotFound, ErrTypeInvalidKubeconfig, ErrTypeUnauthorized,
		ErrTypeKubeVirtMissing, ErrTypeAmbiguousPlacement, ErrTypeConflict,
		ErrTypeBootFailed, ErrTypeStorageClassNotFound,
	}
}

// Inputs and results travel through Temporal history, which anyone with UI
// access can read: they hold references and small values only, never Secret
// data, kubeconfigs or cloud-init payloads.

// MachineRef names a Machine on the supervisor.
type MachineRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// PlacementInput asks for the KubevirtConfig of a Machine. A non-empty
// KubevirtConfig is a request from the caller and wins over every other rule.
type PlacementInput struct {
	Machine        MachineRef `json:"machine"`
	KubevirtConfig string     `json:"kubevirtConfig,omitempty"`
}

// Placement is the KubevirtConfig hosting a Machine ("" when it has none).
type Placement struct {
	KubevirtConfig string `json:"kubevirtConfig"`
}

// ClusterRef names a KubevirtConfig.
type ClusterRef struct {
	KubevirtConfig string `json:"kubevirtConfig"`
}

// RemoteMachine names a Machine together with the cluster hosting its VM.
type RemoteMachine struct {
	KubevirtConfig string     `json:"kubevirtConfig"`
	Machine        MachineRef `json:"machine"`
}

// MachinePlan is a Machine's spec, validated and resolved against its
// MachineClass and NetworkNamespace: everything the Ensure activities need
// that does not depend on the remote cluster.
type MachinePlan struct {
	Machine    MachineRef  `json:"machine"`
	Generation int64       `json:"generation"`
	CPU        CPUPlan     `json:"cpu"`
	Memory     string      `json:"memory"` // resource.Quantity, e.g. "2Gi"
	Disks      []DiskPlan  `json:"disks"`
	Network    NetworkPlan `json:"network"`
	Boot       BootPlan    `json:"boot"`
	// CloudInit says spec.cloudInit is set. Its payload is resolved inside
	// EnsureVirtualMachine and never leaves the activity.
	CloudInit bool `json:"cloudInit,omitempty"`
}

// CPUPlan is the VM's CPU topology.
type CPUPlan struct {
	Cores   uint32 `json:"cores"`
	Sockets uint32 `json:"sockets"`
	Threads uint32 `json:"threads"`
}

// DiskPlan is one PVC-backed disk of the VM.
type DiskPlan struct {
	Name      string `json:"name"`    // disk and volume name in the VM
	PVCName   string `json:"pvcName"` // claim on the remote cluster
	Size      string `json:"size"`    // resource.Quantity, e.g. "10Gi"
	Bus       string `json:"bus"`     // virtio, sata or scsi
	BootOrder uint   `json:"bootOrder,omitempty"`
}

// NetworkPlan is the resolved NetworkNamespace of a Machine.
type NetworkPlan struct {
	NetworkNamespace string `json:"networkNamespace,omitempty"`
	// PodNetwork is true when the VM uses the pod network rather than a
	// bridge NetworkAttachmentDefinition.
	PodNetwork bool `json:"podNetwork"`
	VLANID     int  `json:"vlanId,omitempty"`
	Static     bool `json:"static,omitempty"`
}

// BootPlan says how the VM boots: from its disks, PXE, or an ISO. It never
// holds spec.os.imageID itself: the URL may carry credentials (user:password@
// or a signed query) and plans travel through history, so
// EnsureVirtualMachine reads it from the Machine.
type BootPlan struct {
	// HasImage says spec.os.imageID is set. Without an image the VM boots
	// PXE after its boot disk.
	HasImage bool `json:"hasImage,omitempty"`
	// ISO is set when the Machine asks for a DataVolume boot source.
	ISO bool `json:"iso,omitempty"`
	// ISOSourceType is http, https or registry.
	ISOSourceType string `json:"isoSourceType,omitempty"`
}

// UnmarshalJSON also reads plans recorded before HasImage existed, which
// carried the URL itself as "imageURL": a provision running across the
// upgrade keeps booting from its image. The URL is dropped on reading.
func (b *BootPlan) UnmarshalJSON(data []byte) error {
	type plain BootPlan
	var v struct {
		plain
		LegacyImageURL string `json:"imageURL"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("decode BootPlan: %w", err)
	}
	*b = BootPlan(v.plain)
	b.HasImage = b.HasImage || v.LegacyImageURL != ""
	return nil
}

// VolumesInput asks for the PVCs of a plan.
type VolumesInput struct {
	KubevirtConfig string     `json:"kubevirtConfig"`
	Machine        MachineRef `json:"machine"`
	Disks          []DiskPlan `json:"disks"`
}

// VolumesResult lists the claims and which of them this call created.
type VolumesResult struct {
	Volumes []VolumeStatus `json:"volumes"`
	Created []string       `json:"created,omitempty"`
}

// VolumeStatus describes one claim as it exists on the cluster.
type VolumeStatus struct {
	PVCName      string   `json:"pvcName"`
	Size         string   `json:"size"`
	StorageClass string   `json:"storageClass,omitempty"`
	VolumeMode   string   `json:"volumeMode,omitempty"`
	AccessModes  []string `json:"accessModes,omitempty"`
}

// NetworkInput asks for the network of a Machine.
type NetworkInput struct {
	KubevirtConfig string      `json:"kubevirtConfig"`
	Machine        MachineRef  `json:"machine"`
	Network        NetworkPlan `json:"network"`
}

// NetworkResult is the network the VM attaches to and its stable MAC.
type NetworkResult struct {
	// NetworkName is the VM network: "default" for the pod network, else the
	// NetworkAttachmentDefinition's name.
	NetworkName string `json:"networkName"`
	NADName     string `json:"nadName,omitempty"`
	NADCreated  bool   `json:"nadCreated,omitempty"`
	MACAddress  string `json:"macAddress"`
	// NetworkConfigurationCreated says this call created the supervisor's
	// NetworkConfiguration (as opposed to reusing one).
	NetworkConfigurationCreated bool `json:"networkConfigurationCreated,omitempty"`
}

// VirtualMachineInput asks for the VM of a plan.
type VirtualMachineInput struct {
	KubevirtConfig string        `json:"kubevirtConfig"`
	Plan           MachinePlan   `json:"plan"`
	Network        NetworkResult `json:"network"`
}

// VirtualMachineResult names the VM and says whether this call created it.
type VirtualMachineResult struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Created   bool   `json:"created,omitempty"`
}

// VMObservation is what a KubeVirt cluster shows of a Machine's VM and VMI,
// already mapped to vitistack's vocabulary.
type VMObservation struct {
	Phase              string            `json:"phase"`
	State              string            `json:"state"` // VM printableStatus
	IPAddresses        []string          `json:"ipAddresses,omitempty"`
	IPv6Addresses      []string          `json:"ipv6Addresses,omitempty"`
	PublicIPAddresses  []string          `json:"publicIPAddresses,omitempty"`
	PrivateIPAddresses []string          `json:"privateIPAddresses,omitempty"`
	Interfaces         []InterfaceStatus `json:"interfaces,omitempty"`
	Disks              []DiskStatus      `json:"disks,omitempty"`
}

// HasAddress says whether the observation carries at least one IP.
func (o VMObservation) HasAddress() bool {
	return len(o.IPAddresses) > 0 || len(o.IPv6Addresses) > 0
}

// InterfaceStatus is one VMI interface.
type InterfaceStatus struct {
	Name          string   `json:"name,omitempty"`
	MACAddress    string   `json:"macAddress,omitempty"`
	IPAddresses   []string `json:"ipAddresses,omitempty"`
	IPv6Addresses []string `json:"ipv6Addresses,omitempty"`
	State         string   `json:"state,omitempty"`
	Type          string   `json:"type,omitempty"`
}

// DiskStatus is one PVC-backed disk of the VMI.
type DiskStatus struct {
	Name        string   `json:"name"`
	Device      string   `json:"device,omitempty"`
	PVCName     string   `json:"pvcName,omitempty"`
	VolumeMode  string   `json:"volumeMode,omitempty"`
	Size        int64    `json:"size,omitempty"`
	AccessModes []string `json:"accessModes,omitempty"`
}

// StatusUpdate is a change to a Machine's status. The activity merges it into
// the current status and writes only if the result differs.
type StatusUpdate struct {
	Machine        MachineRef `json:"machine"`
	Phase          string     `json:"phase"`
	KubevirtConfig string     `json:"kubevirtConfig,omitempty"`
	// Condition is set (or replaced, by type) when not nil.
	Condition *Condition `json:"condition,omitempty"`
	// Failure sets failureReason/failureMessage; nil clears them.
	Failure *Failure `json:"failure,omitempty"`
	// Observation, when not nil, refreshes state, addresses, interfaces and disks.
	Observation *VMObservation `json:"observation,omitempty"`
}

// Condition is a typed Machine condition.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// Failure is why a Machine failed.
type Failure struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// StatusResult says whether the status was written.
type StatusResult struct {
	Changed bool `json:"changed"`
}

// DeleteVolumesInput deletes our PVCs of a Machine; with PVCNames set, only
// those (compensation passes what its run created).
type DeleteVolumesInput struct {
	RemoteMachine
	PVCNames []string `json:"pvcNames,omitempty"`
}

// DeleteResult lists what a delete activity removed.
type DeleteResult struct {
	Deleted []string `json:"deleted,omitempty"`
}

// ClusterHealth is the outcome of checking one KubevirtConfig.
type ClusterHealth struct {
	KubevirtConfig string        `json:"kubevirtConfig"`
	Healthy        bool          `json:"healthy"`
	Reason         string        `json:"reason,omitempty"`
	Duration       time.Duration `json:"duration"`
	CheckedAt      time.Time     `json:"checkedAt"`
}
