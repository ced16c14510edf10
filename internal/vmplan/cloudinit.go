package vmplan

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"

	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// Cloud-init reaches the VM through a Secret on the KubeVirt cluster, in
// the VM's namespace, that the VM's cloudInitNoCloud volume references:
// KubeVirt refuses inline payloads over 2048 bytes, and whoever may read
// VMs would read an inline payload's passwords.
const (
	// CloudInitUserDataKey and CloudInitNetworkDataKey are the keys
	// KubeVirt reads from the Secrets of secretRef and networkDataSecretRef.
	CloudInitUserDataKey    = "userdata"
	CloudInitNetworkDataKey = "networkdata"
	// MaxCloudInitBytes is the most user and network data can add up to:
	// the API server refuses a Secret whose values are larger.
	MaxCloudInitBytes = corev1.MaxSecretSize

	cloudInitSecretSuffix = "-cloudinit"
)

// CloudInitSecretName is the name of VM vm's cloud-init Secret. Plan keeps
// VM names to a label value's 63 characters, so it is a valid Secret name.
func CloudInitSecretName(vm string) string { return vm + cloudInitSecretSuffix }

// CloudInitData is a resolved NoCloud payload. It may hold credentials, so
// it formats as a placeholder: a stray log line or %v cannot leak it.
type CloudInitData struct {
	UserData    string
	NetworkData string
	// UserDataField and NetworkDataField name the Machine field each
	// payload came from (spec.cloudInit.userDataSecretRef, ...), for
	// messages; empty means spec.cloudInit.userData or .networkData.
	UserDataField    string
	NetworkDataField string
}

func (CloudInitData) String() string   { return "cloudInitData{redacted}" }
func (CloudInitData) GoString() string { return "cloudInitData{redacted}" }

// ValidateCloudInitSize refuses payloads that no Secret can carry. The
// message names the Machine, the fields and their sizes, never content.
func ValidateCloudInitSize(m contract.MachineRef, d CloudInitData) error {
	user, network := len(d.UserData), len(d.NetworkData)
	userField := fieldOr(d.UserDataField, "spec.cloudInit.userData")
	networkField := fieldOr(d.NetworkDataField, "spec.cloudInit.networkData")
	switch {
	case user > MaxCloudInitBytes:
		return InvalidSpec(m, userField, "%d bytes, more than the %d a Kubernetes Secret can hold", user, MaxCloudInitBytes)
	case network > MaxCloudInitBytes:
		return InvalidSpec(m, networkField, "%d bytes, more than the %d a Kubernetes Secret can hold", network, MaxCloudInitBytes)
	case user+network > MaxCloudInitBytes:
		return InvalidSpec(m, "spec.cloudInit", "user data (%s, %d bytes) and network data (%s, %d bytes) add up to more than the %d bytes a Kubernetes Secret can hold",
			userField, user, networkField, network, MaxCloudInitBytes)
	}
	return nil
}

func fieldOr(field, def string) string {
	if field == "" {
		return def
	}
	return field
}

// BuildCloudInitSecret returns the Secret that carries d to the VM of m,
// labelled like every object machineflow makes for m. Network data has a
// key only when there is some, as the VM references it only then.
func BuildCloudInitSecret(m contract.MachineRef, d CloudInitData) (*corev1.Secret, error) {
	if err := ValidateCloudInitSize(m, d); err != nil {
		return nil, err
	}
	data := map[string][]byte{CloudInitUserDataKey: []byte(d.UserData)}
	if d.NetworkData != "" {
		data[CloudInitNetworkDataKey] = []byte(d.NetworkData)
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      CloudInitSecretName(m.Name),
			Namespace: m.Namespace,
			Labels:    names.ManagedLabels(m.Name),
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}, nil
}

// cloudInitSecretSource is the VM volume that reads d from the Secret of
// BuildCloudInitSecret.
func cloudInitSecretSource(vm string, d CloudInitData) *kubevirtv1.CloudInitNoCloudSource {
	ref := &corev1.LocalObjectReference{Name: CloudInitSecretName(vm)}
	src := &kubevirtv1.CloudInitNoCloudSource{UserDataSecretRef: ref}
	if d.NetworkData != "" {
		src.NetworkDataSecretRef = ref
	}
	return src
}

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

// Field is the Machine field the source reads, for messages.
func (src CloudInitSource) Field() string {
	switch {
	case src.Inline != "":
		return "spec.cloudInit." + src.Kind
	case src.Base64 != "":
		return "spec.cloudInit." + src.Kind + "Base64"
	case src.Ref != nil:
		return src.Ref.Field
	}
	return "spec.cloudInit." + src.Kind
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
