package activities

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/machineflow/machineflow/internal/vmstatus"
)

// Settings are the operator's environment settings that shape what the
// activities create. The names in the comments are the environment variables
// that LoadSettings reads, kept identical to the kubevirt-operator's so a
// deployment can switch without renaming its configuration.
type Settings struct {
	CPUModel         string // CPU_MODEL
	PVCVolumeMode    string // PVC_VOLUME_MODE: Block or Filesystem
	PVCAccessMode    string // PVC_ACCESS_MODE: used when no StorageProfile says better
	StorageClassName string // STORAGE_CLASS_NAME: empty means the cluster default
	IPSource         string // IP_SOURCE: vmi or networkconfiguration
	MACSet           string // MAC_SET: the second octet of generated MACs, hex
	NADCNIVersion    string // NETWORK_ATTACHMENT_DEFINITION_CNI_VERSION

	// DefaultISOSize is the DataVolume size when an ISO's size is unknown.
	DefaultISOSize string
	// ISOHeadTimeout bounds the HTTP HEAD that sizes an ISO.
	ISOHeadTimeout time.Duration
	// PollInitial and PollMax bound the backoff of the activities that wait
	// for a VM to boot or to disappear.
	PollInitial time.Duration
	PollMax     time.Duration
}

// DefaultSettings are the operator's defaults.
func DefaultSettings() Settings {
	return Settings{
		CPUModel:       "host-model",
		PVCVolumeMode:  string(corev1.PersistentVolumeBlock),
		PVCAccessMode:  string(corev1.ReadWriteMany),
		IPSource:       vmstatus.IPSourceVMI,
		MACSet:         "12",
		NADCNIVersion:  "1.0.0",
		DefaultISOSize: "8Gi",
		ISOHeadTimeout: 10 * time.Second,
		PollInitial:    500 * time.Millisecond,
		PollMax:        5 * time.Second,
	}
}

var hexOctet = regexp.MustCompile(`^[0-9a-fA-F]{2}$`)

// Validate reports every invalid setting at once, each as
// SETTING="value": rule, naming the variable (or the field, for the
// settings that have none).
func (s Settings) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.CPUModel == "" {
		bad("CPU_MODEL=%q: must not be empty", s.CPUModel)
	}
	switch corev1.PersistentVolumeMode(s.PVCVolumeMode) {
	case corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem:
	default:
		bad("PVC_VOLUME_MODE=%q: must be %s or %s", s.PVCVolumeMode, corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)
	}
	switch corev1.PersistentVolumeAccessMode(s.PVCAccessMode) {
	case corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod:
	default:
		bad("PVC_ACCESS_MODE=%q: must be %s, %s, %s or %s", s.PVCAccessMode,
			corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod)
	}
	switch s.IPSource {
	case vmstatus.IPSourceVMI, vmstatus.IPSourceNetworkConfiguration:
	default:
		bad("IP_SOURCE=%q: must be %s or %s", s.IPSource, vmstatus.IPSourceVMI, vmstatus.IPSourceNetworkConfiguration)
	}
	if !hexOctet.MatchString(s.MACSet) {
		bad("MAC_SET=%q: must be two hex digits", s.MACSet)
	}
	if s.NADCNIVersion == "" {
		bad("NETWORK_ATTACHMENT_DEFINITION_CNI_VERSION=%q: must not be empty", s.NADCNIVersion)
	}
	if q, err := resource.ParseQuantity(s.DefaultISOSize); err != nil || q.Sign() <= 0 {
		bad("DefaultISOSize=%q: must be a positive quantity", s.DefaultISOSize)
	}
	if s.ISOHeadTimeout <= 0 {
		bad("ISOHeadTimeout=%s: must be positive", s.ISOHeadTimeout)
	}
	if s.PollInitial <= 0 || s.PollMax < s.PollInitial {
		bad("PollInitial=%s, PollMax=%s: want 0 < PollInitial <= PollMax", s.PollInitial, s.PollMax)
	}
	return errors.Join(errs...)
}

// LoadSettings overlays the operator's environment variables (read through
// lookup, e.g. os.LookupEnv) on DefaultSettings and validates the result.
func LoadSettings(lookup func(string) (string, bool)) (Settings, error) {
	s := DefaultSettings()
	for name, field := range map[string]*string{
		"CPU_MODEL":          &s.CPUModel,
		"PVC_VOLUME_MODE":    &s.PVCVolumeMode,
		"PVC_ACCESS_MODE":    &s.PVCAccessMode,
		"STORAGE_CLASS_NAME": &s.StorageClassName,
		"IP_SOURCE":          &s.IPSource,
		"MAC_SET":            &s.MACSet,
		"NETWORK_ATTACHMENT_DEFINITION_CNI_VERSION": &s.NADCNIVersion,
	} {
		if v, ok := lookup(name); ok {
			*field = strings.TrimSpace(v)
		}
	}
	s.IPSource = strings.ToLower(s.IPSource)
	if err := s.Validate(); err != nil {
		return Settings{}, fmt.Errorf("activity settings: %w", err)
	}
	return s, nil
}
