package kubevirtsim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/machineflow/machineflow/internal/names"
)

// Annotations on a VirtualMachine that change how the simulator treats it.
// They sit under names.VMAnnotationPrefix, so a test can set them on a
// Machine and let the activities copy them onto the VM. They are read on
// every poll: adding or removing one changes a running VM.
const (
	annotationPrefix = names.VMAnnotationPrefix + "sim-"

	// FailureAnnotation makes the VM enter a failure state; the value is a
	// Failure. Removing it lets the VM recover.
	FailureAnnotation = annotationPrefix + "failure"
	// BootDelayAnnotation overrides Options.BootDelay for one VM; the value
	// is a Go duration ("3s", "0s").
	BootDelayAnnotation = annotationPrefix + "boot-delay"
	// NeverReadyAnnotation "true" keeps the VMI in Scheduling forever, the
	// way a VM looks when no node ever takes it and nothing reports why.
	NeverReadyAnnotation = annotationPrefix + "never-ready"
)

// Failure is a failure state the simulator can put a VM in. The values are
// the reasons KubeVirt reports, which machineflow maps to a failed Machine.
type Failure string

// The failure states. Each sets the VM printableStatus KubeVirt would show
// and leaves the VMI the way virt-controller leaves it in that situation.
const (
	// ErrImagePull: VMI Scheduling, condition Synchronized=False reason ErrImagePull.
	ErrImagePull Failure = "ErrImagePull"
	// ImagePullBackOff: VMI Scheduling, condition Synchronized=False reason ImagePullBackOff.
	ImagePullBackOff Failure = "ImagePullBackOff"
	// CrashLoopBackOff: VMI Failed and the VM's status.startFailure set.
	CrashLoopBackOff Failure = "CrashLoopBackOff"
	// Unschedulable: VMI Scheduling, condition PodScheduled=False reason Unschedulable.
	Unschedulable Failure = "Unschedulable"
	// DataVolumeError: VMI Pending, condition DataVolumesReady=False.
	DataVolumeError Failure = "DataVolumeError"
	// PvcNotFound: VMI Pending, condition Synchronized=False reason FailedPvcNotFound.
	PvcNotFound Failure = "PvcNotFound"
)

// Failures lists every Failure, in the order they are documented.
var Failures = []Failure{ErrImagePull, ImagePullBackOff, CrashLoopBackOff, Unschedulable, DataVolumeError, PvcNotFound}

// PrintableStatus is the VM status.printableStatus KubeVirt shows for f.
func (f Failure) PrintableStatus() kubevirtv1.VirtualMachinePrintableStatus {
	switch f {
	case ErrImagePull:
		return kubevirtv1.VirtualMachineStatusErrImagePull
	case ImagePullBackOff:
		return kubevirtv1.VirtualMachineStatusImagePullBackOff
	case CrashLoopBackOff:
		return kubevirtv1.VirtualMachineStatusCrashLoopBackOff
	case Unschedulable:
		return kubevirtv1.VirtualMachineStatusUnschedulable
	case DataVolumeError:
		return kubevirtv1.VirtualMachineStatusDataVolumeError
	case PvcNotFound:
		return kubevirtv1.VirtualMachineStatusPvcNotFound
	}
	return kubevirtv1.VirtualMachineStatusUnknown
}

// phase is the VMI phase the failure holds the VMI in.
func (f Failure) phase() kubevirtv1.VirtualMachineInstancePhase {
	switch f {
	case CrashLoopBackOff:
		return kubevirtv1.Failed
	case DataVolumeError, PvcNotFound:
		return kubevirtv1.Pending
	}
	return kubevirtv1.Scheduling // ErrImagePull, ImagePullBackOff, Unschedulable
}

// behaviour is what a VM's annotations ask for.
type behaviour struct {
	failure    Failure
	bootDelay  time.Duration
	neverReady bool
}

// parseBehaviour reads the simulator annotations, defaulting the boot delay.
// The error names the annotation and the accepted values; it is shown on the
// VM, so a typo in a test is loud instead of silently booting.
func parseBehaviour(annotations map[string]string, defaultBootDelay time.Duration) (behaviour, error) {
	b := behaviour{bootDelay: defaultBootDelay}
	if v, ok := annotations[FailureAnnotation]; ok {
		if !slices.Contains(Failures, Failure(v)) {
			return b, fmt.Errorf("annotation %s: unknown failure %q, want one of %s", FailureAnnotation, v, failureList())
		}
		b.failure = Failure(v)
	}
	if v, ok := annotations[BootDelayAnnotation]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return b, fmt.Errorf("annotation %s: %q is not a non-negative Go duration such as \"2s\"", BootDelayAnnotation, v)
		}
		b.bootDelay = d
	}
	if v, ok := annotations[NeverReadyAnnotation]; ok {
		never, err := strconv.ParseBool(v)
		if err != nil {
			return b, fmt.Errorf("annotation %s: %q is not a boolean", NeverReadyAnnotation, v)
		}
		b.neverReady = never
	}
	return b, nil
}

func failureList() string {
	s := make([]string, len(Failures))
	for i, f := range Failures {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}
