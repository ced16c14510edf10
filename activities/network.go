package activities

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// NetworkAttachmentDefinitions are handled unstructured (see internal/scheme).
var nadGVK = schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}

const (
	vlanIDLabel   = "vitistack.io/vlan-id"
	bridgeName    = "br0"
	untaggedNAD   = "bridge-br0"
	maxNCSpecName = 32
)

// EnsureNetwork makes sure the network the VM attaches to exists (the pod
// network, or a bridge NAD on the cluster) and that the Machine has a
// stable MAC recorded in its NetworkConfiguration on the supervisor.
func (a *Activities) EnsureNetwork(ctx context.Context, in contract.NetworkInput) (contract.NetworkResult, error) {
	machine, err := a.getMachine(ctx, in.Machine)
	if err != nil {
		return contract.NetworkResult{}, err
	}
	res := contract.NetworkResult{NetworkName: podNetworkName}
	if !in.Network.PodNetwork {
		c, err := a.remote(ctx, in.KubevirtConfig)
		if err != nil {
			return contract.NetworkResult{}, err
		}
		nad, err := buildNAD(in.Machine, in.Network.VLANID, a.settings.NADCNIVersion)
		if err != nil {
			return contract.NetworkResult{}, err
		}
		_, created, err := ensureObject(ctx, c, in.KubevirtConfig, nadGVK.Kind, nad)
		if err != nil {
			return contract.NetworkResult{}, err
		}
		res.NetworkName, res.NADName, res.NADCreated = nad.GetName(), nad.GetName(), created
	}
	res.MACAddress, res.NetworkConfigurationCreated, err = a.ensureNetworkConfiguration(ctx, machine, in.Network.NetworkNamespace, res.NetworkName)
	if err != nil {
		return contract.NetworkResult{}, err
	}
	return res, nil
}

// nadName is vlan<id>, or bridge-br0 for a negative id.
func nadName(vlanID int) string {
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

// buildNAD is the bridge NetworkAttachmentDefinition for a VLAN.
func buildNAD(m contract.MachineRef, vlanID int, cniVersion string) (*unstructured.Unstructured, error) {
	cfg := cniConfig{CNIVersion: cniVersion, Name: bridgeName, Plugins: []cniPlugin{{
		Type: "bridge", Bridge: bridgeName, IPAM: map[string]any{}, VLAN: max(vlanID, 0),
	}}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode NAD config: %w", err)
	}
	labels := names.ManagedLabels(m.Name)
	if vlanID >= 0 {
		labels[vlanIDLabel] = strconv.Itoa(vlanID)
	}
	nad := &unstructured.Unstructured{}
	nad.SetGroupVersionKind(nadGVK)
	nad.SetNamespace(m.Namespace)
	nad.SetName(nadName(vlanID))
	nad.SetLabels(labels)
	if err := unstructured.SetNestedField(nad.Object, string(raw), "spec", "config"); err != nil {
		return nil, fmt.Errorf("set NAD config: %w", err)
	}
	return nad, nil
}

// ensureNetworkConfiguration returns the MAC recorded for network in the
// Machine's NetworkConfiguration, creating the object or adding the
// interface (with a fresh MAC) when needed. It writes only on change,
// because the static-ip-operator updates the same object.
func (a *Activities) ensureNetworkConfiguration(ctx context.Context, machine *v1alpha1.Machine, netns, network string) (string, bool, error) {
	key := client.ObjectKeyFromObject(machine)
	what := fmt.Sprintf("NetworkConfiguration %s/%s", key.Namespace, key.Name)
	nc := &v1alpha1.NetworkConfiguration{}
	err := a.supervisor.Get(ctx, key, nc)
	if apierrors.IsNotFound(err) {
		mac, err := a.generateMAC()
		if err != nil {
			return "", false, err
		}
		nc = &v1alpha1.NetworkConfiguration{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: names.ManagedLabels(key.Name)},
			Spec: v1alpha1.NetworkConfigurationSpec{
				NetworkNamespaceName: netns,
				Name:                 shortNetworkConfigName(key.Name),
				Description:          "Network configuration for machine " + key.Name,
				NetworkInterfaces:    []v1alpha1.NetworkConfigurationInterface{{Name: network, MacAddress: mac}},
			},
		}
		if err := controllerutil.SetControllerReference(machine, nc, a.supervisor.Scheme()); err != nil {
			return "", false, fmt.Errorf("owner reference on %s: %w", what, err)
		}
		if err := a.supervisor.Create(ctx, nc); err != nil {
			// AlreadyExists included: the next attempt adopts the winner.
			return "", false, classify(err, "create "+what)
		}
		return mac, true, nil
	}
	if err != nil {
		return "", false, classify(err, "get "+what)
	}
	if !isManaged(nc) && !metav1.IsControlledBy(nc, machine) {
		return "", false, newAppError(contract.ErrTypeConflict, true, nil,
			"%s on the supervisor is neither labelled %s nor controlled by the Machine; refusing to adopt it", what, managedBySelector())
	}
	for _, ifc := range nc.Spec.NetworkInterfaces {
		if ifc.Name == network && ifc.MacAddress != "" {
			return ifc.MacAddress, false, nil
		}
	}
	mac, err := a.generateMAC()
	if err != nil {
		return "", false, err
	}
	patch := client.MergeFromWithOptions(nc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	replaced := false
	for i := range nc.Spec.NetworkInterfaces {
		if nc.Spec.NetworkInterfaces[i].Name == network {
			nc.Spec.NetworkInterfaces[i].MacAddress, replaced = mac, true
		}
	}
	if !replaced {
		nc.Spec.NetworkInterfaces = append(nc.Spec.NetworkInterfaces, v1alpha1.NetworkConfigurationInterface{Name: network, MacAddress: mac})
	}
	if err := a.supervisor.Patch(ctx, nc, patch); err != nil {
		return "", false, classify(err, "add interface "+network+" to "+what)
	}
	return mac, false, nil
}

// generateMAC returns 02:<MAC_SET>:xx:xx:xx:xx, a locally administered
// unicast address.
func (a *Activities) generateMAC() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate MAC: %w", err)
	}
	return fmt.Sprintf("02:%s:%02x:%02x:%02x:%02x", strings.ToLower(a.settings.MACSet), b[0], b[1], b[2], b[3]), nil
}

var (
	workerName       = regexp.MustCompile(`^(.+?)-worker(?:-default)?(?:-worker)?-pool-(\d+)$`)
	controlPlaneName = regexp.MustCompile(`^(.+?)-control-plane-(\d+)$`)
)

// shortNetworkConfigName fits a Machine name into NetworkConfiguration's
// 32-byte spec.name: <cluster>-wrk<n> for workers, <cluster>-ctp<n> for
// control planes, else the name, truncated if need be.
func shortNetworkConfigName(machine string) string {
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
