package vmstatus

import (
	"fmt"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// Merge applies upd to cur and says whether the result differs.
// lastUpdated moves only when something else changed, so identical updates
// write nothing; a condition's lastTransitionTime moves only when its status
// does; conditions are unique by type.
func Merge(cur v1alpha1.MachineStatus, upd contract.StatusUpdate, now time.Time) (v1alpha1.MachineStatus, bool) {
	out := *cur.DeepCopy()
	out.Provider = v1alpha1.MachineProviderType(names.ProviderKubevirt)
	if upd.Phase != "" {
		out.Phase = upd.Phase
	}
	if upd.KubevirtConfig != "" {
		out.ProviderID = ProviderID(upd.KubevirtConfig, upd.Machine)
	}
	if o := upd.Observation; o != nil {
		out.State = o.State
		out.IPAddresses = o.IPAddresses
		out.IPv6Addresses = o.IPv6Addresses
		out.PublicIPAddresses = o.PublicIPAddresses
		out.PrivateIPAddresses = o.PrivateIPAddresses
		out.NetworkInterfaces = nil
		for _, i := range o.Interfaces {
			out.NetworkInterfaces = append(out.NetworkInterfaces, v1alpha1.NetworkInterfaceStatus{
				Name: i.Name, MACAddress: i.MACAddress, IPAddresses: i.IPAddresses,
				IPv6Addresses: i.IPv6Addresses, State: i.State, Type: i.Type,
			})
		}
		out.Disks = nil
		for _, d := range o.Disks {
			out.Disks = append(out.Disks, v1alpha1.MachineStatusDisk{
				Name: d.Name, Device: d.Device, PVCName: d.PVCName, VolumeMode: d.VolumeMode,
				Size: d.Size, AccessModes: d.AccessModes,
			})
		}
	}
	if upd.Failure != nil {
		out.FailureReason = &upd.Failure.Reason
		out.FailureMessage = &upd.Failure.Message
	} else {
		out.FailureReason, out.FailureMessage = nil, nil
	}
	out.Conditions = mergeConditions(out.Conditions, upd.Condition, now)

	// lastUpdated is excluded from the comparison: it is the result of a
	// change, not one.
	out.LastUpdated = cur.LastUpdated
	if equality.Semantic.DeepEqual(cur, out) {
		return cur, false
	}
	out.LastUpdated = metav1.NewTime(now)
	return out, true
}

// mergeConditions de-duplicates conditions by type (the operator appended
// forever; the last entry of a type wins) and sets c.
func mergeConditions(conds []v1alpha1.MachineCondition, c *contract.Condition, now time.Time) []v1alpha1.MachineCondition {
	var out []v1alpha1.MachineCondition
	index := map[string]int{}
	for _, existing := range conds {
		if i, seen := index[existing.Type]; seen {
			out[i] = existing
			continue
		}
		index[existing.Type] = len(out)
		out = append(out, existing)
	}
	if c == nil {
		return out
	}
	next := v1alpha1.MachineCondition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message,
		LastTransitionTime: metav1.NewTime(now)}
	i, seen := index[c.Type]
	if !seen {
		return append(out, next)
	}
	if out[i].Status == c.Status {
		next.LastTransitionTime = out[i].LastTransitionTime
	}
	out[i] = next
	return out
}

// ProviderID names the VM behind a Machine: kubevirt://<config>/<ns>/<name>.
func ProviderID(config string, m contract.MachineRef) string {
	return fmt.Sprintf("kubevirt://%s/%s/%s", config, m.Namespace, m.Name)
}
