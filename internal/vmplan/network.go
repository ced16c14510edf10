package vmplan

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// NetworkAttachmentDefinitions are handled unstructured (see internal/scheme).
var NADGVK = schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}

const (
	VLANIDLabel   = "vitistack.io/vlan-id"
	bridgeName    = "br0"
	untaggedNAD   = "bridge-br0"
	maxNCSpecName = 32
)

// NADName is vlan<id>, or bridge-br0 for a negative id.
func NADName(vlanID int) string {
	if vlanID < 0 {
		return untaggedNAD
	}
	return "vlan" + strconv.Itoa(vlanID)
}

type cniConfig struct {
	CNIVersion string      `json:"cniVersion"`
	Name       string      `json:"name"`
	Plugins    []cniPlugin `json:"plugins"`
}

type cniPlugin struct {
	Type   string         `json:"type"`
	Bridge string         `json:"bridge"`
	IPAM   map[string]any `json:"ipam"`
	// VLAN is omitted for untagged bridges: the operator wrote "vlan":-1,
	// which the bridge plugin rejects.
	VLAN int `json:"vlan,omitempty"`
}

// BuildNAD is the bridge NetworkAttachmentDefinition for a VLAN.
func BuildNAD(m contract.MachineRef, vlanID int, cniVersion string) (*unstructured.Unstructured, error) {
	cfg := cniConfig{CNIVersion: cniVersion, Name: bridgeName, Plugins: []cniPlugin{{
		Type: "bridge", Bridge: bridgeName, IPAM: map[string]any{}, VLAN: max(vlanID, 0),
	}}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode NAD config: %w", err)
	}
	labels := names.ManagedLabels(m.Name)
	if vlanID >= 0 {
		labels[VLANIDLabel] = strconv.Itoa(vlanID)
	}
	nad := &unstructured.Unstructured{}
	nad.SetGroupVersionKind(NADGVK)
	nad.SetNamespace(m.Namespace)
	nad.SetName(NADName(vlanID))
	nad.SetLabels(labels)
	if err := unstructured.SetNestedField(nad.Object, string(raw), "spec", "config"); err != nil {
		return nil, fmt.Errorf("set NAD config: %w", err)
	}
	return nad, nil
}

var (
	workerName       = regexp.MustCompile(`^(.+?)-worker(?:-default)?(?:-worker)?-pool-(\d+)$`)
	controlPlaneName = regexp.MustCompile(`^(.+?)-control-plane-(\d+)$`)
)

// ShortNetworkConfigName fits a Machine name into NetworkConfiguration's
// 32-byte spec.name: <cluster>-wrk<n> for workers, <cluster>-ctp<n> for
// control planes, else the name, truncated if need be.
func ShortNetworkConfigName(machine string) string {
	for _, p := range []struct {
		re    *regexp.Regexp
		infix string
	}{{workerName, "-wrk"}, {controlPlaneName, "-ctp"}} {
		if m := p.re.FindStringSubmatch(machine); m != nil {
			if short := m[1] + p.infix + m[2]; len(short) <= maxNCSpecName {
				return short
			}
		}
	}
	if len(machine) <= maxNCSpecName {
		return machine
	}
	return machine[:maxNCSpecName]
}
