package vmplan

import (
	"math"
	"net/url"

	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// PlanBoot decides how the VM boots and validates the image for it.
// EnsureVirtualMachine runs it again on the Machine it reads, to check that
// the image it takes from there still fits the plan.
func PlanBoot(machine *v1alpha1.Machine) (contract.BootPlan, error) {
	ref := RefOf(machine)
	image := machine.Spec.OS.ImageID
	boot := contract.BootPlan{HasImage: image != ""}
	if machine.Annotations[names.BootSourceAnnotation] != names.BootSourceDataVolume || image == "" {
		return boot, nil
	}
	boot.ISO = true
	boot.ISOSourceType = machine.Annotations[names.BootSourceTypeAnnotation]
	if boot.ISOSourceType == "" {
		boot.ISOSourceType = ISOSourceHTTP
	}
	switch boot.ISOSourceType {
	case ISOSourceHTTP, ISOSourceHTTPS:
		// The message goes to history and the Machine's status, so it
		// shows the URL as isoSize logs it: without a password.
		u, err := url.Parse(image)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return contract.BootPlan{}, InvalidSpec(ref, "spec.os.imageID", "%q is not an http(s) URL", RedactURL(image))
		}
	case ISOSourceRegistry:
	default:
		return contract.BootPlan{}, InvalidSpec(ref, "metadata.annotations["+names.BootSourceTypeAnnotation+"]",
			"%q is not http, https or registry", boot.ISOSourceType)
	}
	return boot, nil
}

// BootImage is the Machine's spec.os.imageID, which the plan leaves out of
// history. The Machine may have changed since LoadMachine planned the VM, so
// its boot source is validated again; one that now boots differently (the
// image removed or added, the boot-source annotations changed) is final: a
// retry reads the same Machine, and the VM would contradict the plan the
// workflow runs and reports. Another URL booting the same way is used as is.
func BootImage(machine *v1alpha1.Machine, planned contract.BootPlan) (string, error) {
	now, err := PlanBoot(machine)
	if err != nil {
		return "", err
	}
	if now == planned {
		return machine.Spec.OS.ImageID, nil
	}
	field := "metadata.annotations[" + names.BootSourceTypeAnnotation + "]"
	switch {
	case now.HasImage != planned.HasImage:
		field = "spec.os.imageID"
	case now.ISO != planned.ISO:
		field = "metadata.annotations[" + names.BootSourceAnnotation + "]"
	}
	return "", InvalidSpec(RefOf(machine), field, "changed since LoadMachine: the Machine now boots from %s, the plan from %s",
		describeBoot(now), describeBoot(planned))
}

func describeBoot(b contract.BootPlan) string {
	switch {
	case b.ISO:
		return "an ISO (" + b.ISOSourceType + " source)"
	case b.HasImage:
		return "an image without ISO boot"
	default:
		return "its disks and PXE (no image)"
	}
}

// ISOSize is bytes ×1.1 rounded up to whole Gi (at least 1Gi).
func ISOSize(bytes int64) resource.Quantity {
	const gi = 1 << 30
	withSlack := int64(math.Ceil(float64(bytes) * 1.1))
	gis := max((withSlack+gi-1)/gi, 1)
	return *resource.NewQuantity(gis*gi, resource.BinarySI)
}

// RedactURL hides a password in a URL before it is logged or quoted in an
// error.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}
