package activities

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strings"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
)

// noopUserData keeps the NoCloud user-data file present when the Machine
// gives none (Talos, for one, logs errors without it).
const noopUserData = "#cloud-config\n"

// resolveCloudInit reads the Machine's NoCloud payload on the supervisor:
// for each of user and network data the first of inline, base64, Secret and
// ConfigMap; network data for a static NetworkNamespace is otherwise
// synthesised from the NetworkConfiguration's allocation. The result stays
// inside the activity: it goes into the VM spec and nowhere else.
func (a *Activities) resolveCloudInit(ctx context.Context, machine *v1alpha1.Machine, network contract.NetworkPlan) (*cloudInitData, error) {
	ci := machine.Spec.CloudInit
	if ci == nil {
		return nil, nil
	}
	ref := refOf(machine)
	if err := validateCloudInit(ref, ci); err != nil {
		return nil, err
	}
	srcs := cloudInitSources(ci)
	user, err := a.readCloudInitSource(ctx, ref, srcs[0])
	if err != nil {
		return nil, err
	}
	networkData, err := a.readCloudInitSource(ctx, ref, srcs[1])
	if err != nil {
		return nil, err
	}
	data := &cloudInitData{UserData: noopUserData}
	if user != nil {
		data.UserData = *user
	}
	switch {
	case networkData != nil:
		data.NetworkData = *networkData
	case network.Static:
		if data.NetworkData, err = a.staticNetworkData(ctx, machine, network.NetworkNamespace); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// readCloudInitSource returns a payload, or nil when the source is empty.
func (a *Activities) readCloudInitSource(ctx context.Context, ref contract.MachineRef, src cloudInitSource) (*string, error) {
	if v, err := src.decodeInline(ref); err != nil || v != nil {
		return v, err
	}
	if src.ref == nil {
		return nil, nil
	}
	v, err := a.readCloudInitRef(ctx, ref.Namespace, *src.ref)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// decodeInline returns the inline or base64 payload, nil when neither is set.
func (src cloudInitSource) decodeInline(ref contract.MachineRef) (*string, error) {
	switch {
	case src.inline != "":
		return &src.inline, nil
	case src.base64 != "":
		raw, err := base64.StdEncoding.DecodeString(src.base64)
		if err != nil {
			return nil, invalidSpec(ref, "spec.cloudInit."+src.kind+"Base64", "not valid base64")
		}
		v := string(raw)
		return &v, nil
	}
	return nil, nil
}

// staticNetworkData renders network-config v1 from the IPs that the
// static-ip-operator allocated into the NetworkConfiguration's status.
// Until it has, this is a retryable wait.
func (a *Activities) staticNetworkData(ctx context.Context, machine *v1alpha1.Machine, netnsName string) (string, error) {
	netns := &v1alpha1.NetworkNamespace{}
	if err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: machine.Namespace, Name: netnsName}, netns); err != nil {
		return "", classify(err, fmt.Sprintf("get NetworkNamespace %s/%s", machine.Namespace, netnsName))
	}
	nc := &v1alpha1.NetworkConfiguration{}
	err := a.supervisor.Get(ctx, client.ObjectKeyFromObject(machine), nc)
	if apierrors.IsNotFound(err) {
		return "", waiting("NetworkConfiguration %s/%s does not exist yet", machine.Namespace, machine.Name)
	}
	if err != nil {
		return "", classify(err, fmt.Sprintf("get NetworkConfiguration %s/%s", machine.Namespace, machine.Name))
	}
	return renderNetworkConfigV1(netns, nc)
}

// renderNetworkConfigV1 pairs each interface of the NetworkConfiguration's
// spec (by MAC) with its allocation in status, falling back to the
// NetworkNamespace's static block for subnet, gateway and DNS.
func renderNetworkConfigV1(netns *v1alpha1.NetworkNamespace, nc *v1alpha1.NetworkConfiguration) (string, error) {
	var static v1alpha1.StaticIPAllocationConfig
	if netns.Spec.IPAllocation != nil && netns.Spec.IPAllocation.Static != nil {
		static = *netns.Spec.IPAllocation.Static
	}
	byMAC := map[string]v1alpha1.NetworkConfigurationInterface{}
	for _, s := range nc.Status.NetworkInterfaces {
		byMAC[strings.ToLower(s.MacAddress)] = s
	}
	var b strings.Builder
	b.WriteString("version: 1\nconfig:\n")
	for i, spec := range nc.Spec.NetworkInterfaces {
		mac := strings.ToLower(spec.MacAddress)
		st, ok := byMAC[mac]
		if !ok || len(st.IPv4Addresses) == 0 {
			return "", waiting("NetworkConfiguration %s/%s: no IPv4 address allocated yet for interface %q (%s)",
				nc.Namespace, nc.Name, spec.Name, mac)
		}
		cidr := firstNonEmpty(st.IPv4Subnet, static.IPv4CIDR)
		gateway := firstNonEmpty(st.IPv4Gateway, static.IPv4Gateway)
		dns := st.DNS
		if len(dns) == 0 {
			dns = static.DNS
		}
		netmask, err := ipv4Netmask(cidr)
		if err != nil {
			return "", newAppError(contract.ErrTypeInvalidSpec, true, nil, "NetworkNamespace %s/%s: interface %q: %v", netns.Namespace, netns.Name, spec.Name, err)
		}
		// The interface name inside the guest is not the KubeVirt network
		// name; MAC matching does the binding.
		fmt.Fprintf(&b, "  - type: physical\n    name: eth%d\n", i)
		if mac != "" {
			fmt.Fprintf(&b, "    mac_address: %q\n", mac)
		}
		fmt.Fprintf(&b, "    subnets:\n      - type: static\n        address: %s\n        netmask: %s\n", st.IPv4Addresses[0], netmask)
		if gateway != "" {
			fmt.Fprintf(&b, "        gateway: %s\n", gateway)
		}
		if len(dns) > 0 {
			b.WriteString("        dns_nameservers:\n")
			for _, d := range dns {
				fmt.Fprintf(&b, "          - %s\n", d)
			}
		}
	}
	return b.String(), nil
}

func ipv4Netmask(cidr string) (string, error) {
	if cidr == "" {
		return "", fmt.Errorf("no IPv4 subnet known (status ipv4Subnet or spec.ipAllocation.static.ipv4CIDR)")
	}
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil || len(ipnet.Mask) != net.IPv4len {
		return "", fmt.Errorf("%q is not an IPv4 CIDR", cidr)
	}
	return net.IP(ipnet.Mask).String(), nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
