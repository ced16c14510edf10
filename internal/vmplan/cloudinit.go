package vmplan

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"

	"github.com/vitistack/common/pkg/v1alpha1"

	"github.com/machineflow/machineflow/activities/contract"
)

// ValidateCloudInit checks what can be checked without I/O. Payloads never
// appear in messages.
func ValidateCloudInit(ref contract.MachineRef, ci *v1alpha1.CloudInitConfig) error {
	if ci == nil {
		return nil
	}
	if ci.Type != "" && ci.Type != v1alpha1.CloudInitTypeNoCloud {
		return InvalidSpec(ref, "spec.cloudInit.type", "%q is not supported, only %q", ci.Type, v1alpha1.CloudInitTypeNoCloud)
	}
	for _, src := range CloudInitSources(ci) {
		if _, err := src.InlinePayload(ref); err != nil {
			return err
		}
		if src.Ref != nil && src.Ref.Name == "" {
			return InvalidSpec(ref, src.Ref.Field+".name", "must not be empty")
		}
	}
	return nil
}

// CloudInitRef is the Secret or ConfigMap a cloud-init payload comes from.
type CloudInitRef struct {
	Field  string // spec path, for messages
	Secret bool   // a Secret, else a ConfigMap
	Name   string
	Key    string
}

// CloudInitSource is where one payload (user or network data) comes from,
// by the operator's precedence: inline, base64, Secret, ConfigMap. At most
// one of its fields is used.
type CloudInitSource struct {
	Kind   string // userData or networkData
	Inline string
	Base64 string
	Ref    *CloudInitRef
}

// CloudInitSources returns the user-data and network-data sources.
func CloudInitSources(ci *v1alpha1.CloudInitConfig) [2]CloudInitSource {
	pick := func(kind, inline, b64 string, secret *v1alpha1.CloudInitSecretRef, cm *v1alpha1.CloudInitConfigMapRef, defaultKey string) CloudInitSource {
		src := CloudInitSource{Kind: kind, Inline: inline, Base64: b64}
		switch {
		case inline != "", b64 != "":
		case secret != nil:
			src.Ref = &CloudInitRef{Field: "spec.cloudInit." + kind + "SecretRef", Secret: true, Name: secret.Name, Key: keyOr(secret.Key, defaultKey)}
		case cm != nil:
			src.Ref = &CloudInitRef{Field: "spec.cloudInit." + kind + "ConfigMapRef", Name: cm.Name, Key: keyOr(cm.Key, defaultKey)}
		}
		return src
	}
	return [2]CloudInitSource{
		pick("userData", ci.UserData, ci.UserDataBase64, ci.UserDataSecretRef, ci.UserDataConfigMapRef, defaultUserDataKey),
		pick("networkData", ci.NetworkData, ci.NetworkDataBase64, ci.NetworkDataSecretRef, ci.NetworkDataConfigMapRef, defaultNetDataKey),
	}
}

func keyOr(key, def string) string {
	if key == "" {
		return def
	}
	return key
}

// NoopUserData keeps the NoCloud user-data file present when the Machine
// gives none (Talos, for one, logs errors without it).
const NoopUserData = "#cloud-config\n"

// InlinePayload returns the inline or base64 payload, nil when neither is set.
func (src CloudInitSource) InlinePayload(ref contract.MachineRef) (*string, error) {
	switch {
	case src.Inline != "":
		return &src.Inline, nil
	case src.Base64 != "":
		raw, err := base64.StdEncoding.DecodeString(src.Base64)
		if err != nil {
			return nil, InvalidSpec(ref, "spec.cloudInit."+src.Kind+"Base64", "not valid base64")
		}
		v := string(raw)
		return &v, nil
	}
	return nil, nil
}

// RenderNetworkConfigV1 pairs each interface of the NetworkConfiguration's
// spec (by MAC) with its allocation in status, falling back to the
// NetworkNamespace's static block for subnet, gateway and DNS.
func RenderNetworkConfigV1(netns *v1alpha1.NetworkNamespace, nc *v1alpha1.NetworkConfiguration) (string, error) {
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
			return "", &SpecError{Message: fmt.Sprintf("NetworkNamespace %s/%s: interface %q: %v", netns.Namespace, netns.Name, spec.Name, err)}
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
