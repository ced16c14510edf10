package activities

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// EnsureNetwork makes sure the network the VM attaches to exists (the pod
// network, or a bridge NAD on the cluster) and that the Machine has a
// stable MAC recorded in its NetworkConfiguration on the supervisor.
func (a *Activities) EnsureNetwork(ctx context.Context, in contract.NetworkInput) (contract.NetworkResult, error) {
	machine, err := a.getMachine(ctx, in.Machine)
	if err != nil {
		return contract.NetworkResult{}, err
	}
	res := contract.NetworkResult{NetworkName: vmplan.PodNetworkName}
	if !in.Network.PodNetwork {
		c, err := a.remote(ctx, in.KubevirtConfig)
		if err != nil {
			return contract.NetworkResult{}, err
		}
		nad, err := vmplan.BuildNAD(in.Machine, in.Network.VLANID, a.settings.NADCNIVersion)
		if err != nil {
			return contract.NetworkResult{}, err
		}
		_, created, err := ensureObject(ctx, c, in.KubevirtConfig, vmplan.NADGVK.Kind, nad)
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
				Name:                 vmplan.ShortNetworkConfigName(key.Name),
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
