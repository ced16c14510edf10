package vmplan

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

func TestCloudInitSourcesFollowThePrecedence(t *testing.T) {
	ci := &v1alpha1.CloudInitConfig{
		UserData:             "#cloud-config\n",
		UserDataSecretRef:    &v1alpha1.CloudInitSecretRef{Name: "ignored"},
		NetworkDataSecretRef: &v1alpha1.CloudInitSecretRef{Name: "net"},
	}
	srcs := CloudInitSources(ci)
	require.Equal(t, CloudInitSource{Kind: "userData", Inline: "#cloud-config\n"}, srcs[0], "inline wins over a Secret")
	require.Equal(t, &CloudInitRef{Field: "spec.cloudInit.networkDataSecretRef", Secret: true, Name: "net", Key: defaultNetDataKey}, srcs[1].Ref)

	ci = &v1alpha1.CloudInitConfig{
		UserDataConfigMapRef:    &v1alpha1.CloudInitConfigMapRef{Name: "cm", Key: "custom"},
		NetworkDataConfigMapRef: &v1alpha1.CloudInitConfigMapRef{Name: "cm"},
	}
	srcs = CloudInitSources(ci)
	require.Equal(t, &CloudInitRef{Field: "spec.cloudInit.userDataConfigMapRef", Name: "cm", Key: "custom"}, srcs[0].Ref)
	require.Equal(t, &CloudInitRef{Field: "spec.cloudInit.networkDataConfigMapRef", Name: "cm", Key: defaultNetDataKey}, srcs[1].Ref)
}

func TestInlinePayload(t *testing.T) {
	ref := contract.MachineRef{Namespace: "ns1", Name: "vm1"}
	got, err := CloudInitSource{Kind: "userData", Base64: base64.StdEncoding.EncodeToString([]byte("hunter2"))}.InlinePayload(ref)
	require.NoError(t, err)
	require.Equal(t, "hunter2", *got)

	got, err = CloudInitSource{Kind: "userData", Ref: &CloudInitRef{Name: "s"}}.InlinePayload(ref)
	require.NoError(t, err)
	require.Nil(t, got, "a referenced payload is not inline")

	_, err = CloudInitSource{Kind: "networkData", Base64: "not base64!"}.InlinePayload(ref)
	specErr := requireSpecError(t, err)
	require.Equal(t, "Machine ns1/vm1: spec.cloudInit.networkDataBase64: not valid base64", specErr.Message)
}

func staticNetwork(cidr, gateway string, dns ...string) *v1alpha1.NetworkNamespace {
	netns := &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "static"}}
	netns.Spec.IPAllocation = &v1alpha1.NetworkNamespaceIPAllocation{
		Type:   v1alpha1.IPAllocationTypeStatic,
		Static: &v1alpha1.StaticIPAllocationConfig{IPv4CIDR: cidr, IPv4Gateway: gateway, DNS: dns},
	}
	return netns
}

func networkConfiguration(spec, status []v1alpha1.NetworkConfigurationInterface) *v1alpha1.NetworkConfiguration {
	nc := &v1alpha1.NetworkConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "vm1"}}
	nc.Spec.NetworkInterfaces, nc.Status.NetworkInterfaces = spec, status
	return nc
}

func TestRenderNetworkConfigV1(t *testing.T) {
	spec := []v1alpha1.NetworkConfigurationInterface{{Name: "default", MacAddress: "02:12:AA:BB:CC:DD"}}

	t.Run("the allocation's own subnet, gateway and DNS", func(t *testing.T) {
		nc := networkConfiguration(spec, []v1alpha1.NetworkConfigurationInterface{{
			MacAddress: "02:12:aa:bb:cc:dd", IPv4Addresses: []string{"10.1.2.3"},
			IPv4Subnet: "10.1.2.0/24", IPv4Gateway: "10.1.2.1", DNS: []string{"10.1.2.53"},
		}})
		got, err := RenderNetworkConfigV1(staticNetwork("192.168.0.0/16", "192.168.0.1", "9.9.9.9"), nc)
		require.NoError(t, err)
		require.Equal(t, `version: 1
config:
  - type: physical
    name: eth0
    mac_address: "02:12:aa:bb:cc:dd"
    subnets:
      - type: static
        address: 10.1.2.3
        netmask: 255.255.255.0
        gateway: 10.1.2.1
        dns_nameservers:
          - 10.1.2.53
`, got)
	})
	t.Run("the NetworkNamespace's block fills what the allocation leaves out", func(t *testing.T) {
		nc := networkConfiguration(spec, []v1alpha1.NetworkConfigurationInterface{{MacAddress: "02:12:aa:bb:cc:dd", IPv4Addresses: []string{"192.168.4.5"}}})
		got, err := RenderNetworkConfigV1(staticNetwork("192.168.0.0/16", "192.168.0.1", "9.9.9.9"), nc)
		require.NoError(t, err)
		require.Contains(t, got, "address: 192.168.4.5\n        netmask: 255.255.0.0\n        gateway: 192.168.0.1\n")
		require.Contains(t, got, "          - 9.9.9.9\n")
	})
	t.Run("no gateway, no DNS, no static block", func(t *testing.T) {
		nc := networkConfiguration(spec, []v1alpha1.NetworkConfigurationInterface{{MacAddress: "02:12:aa:bb:cc:dd", IPv4Addresses: []string{"10.0.0.9"}, IPv4Subnet: "10.0.0.0/8"}})
		got, err := RenderNetworkConfigV1(&v1alpha1.NetworkNamespace{}, nc)
		require.NoError(t, err)
		require.NotContains(t, got, "gateway")
		require.NotContains(t, got, "dns_nameservers")
	})
	t.Run("an interface without an address yet is a wait", func(t *testing.T) {
		nc := networkConfiguration(spec, nil)
		_, err := RenderNetworkConfigV1(staticNetwork("10.0.0.0/8", ""), nc)
		var wait *WaitingError
		require.ErrorAs(t, err, &wait)
		require.Equal(t, `NetworkConfiguration ns1/vm1: no IPv4 address allocated yet for interface "default" (02:12:aa:bb:cc:dd)`, wait.Error())
	})
	for name, cidr := range map[string]string{"no subnet known": "", "not IPv4": "fd00::/64", "not a CIDR": "10.0.0.0"} {
		t.Run(name+" is a spec error", func(t *testing.T) {
			nc := networkConfiguration(spec, []v1alpha1.NetworkConfigurationInterface{{MacAddress: "02:12:aa:bb:cc:dd", IPv4Addresses: []string{"10.0.0.9"}}})
			_, err := RenderNetworkConfigV1(staticNetwork(cidr, ""), nc)
			specErr := requireSpecError(t, err)
			require.Contains(t, specErr.Error(), `NetworkNamespace ns1/static: interface "default": `)
		})
	}
}

func TestRedactURL(t *testing.T) {
	require.Equal(t, "https://user:xxxxx@img.example/a.iso", RedactURL("https://user:s3cret@img.example/a.iso"))
	require.Equal(t, "<unparsable URL>", RedactURL("http://[::1"))
}

func TestBuildCloudInitSecret(t *testing.T) {
	ref := contract.MachineRef{Namespace: "ns1", Name: "vm1"}
	secret, err := BuildCloudInitSecret(ref, CloudInitData{UserData: "#cloud-config\n", NetworkData: "version: 1\n"})
	require.NoError(t, err)
	require.Equal(t, "vm1-cloudinit", secret.Name)
	require.Equal(t, "ns1", secret.Namespace)
	require.Equal(t, names.ManagedLabels("vm1"), secret.Labels, "labelled like the VM")
	require.Equal(t, corev1.SecretTypeOpaque, secret.Type)
	require.Equal(t, map[string][]byte{"userdata": []byte("#cloud-config\n"), "networkdata": []byte("version: 1\n")}, secret.Data)

	secret, err = BuildCloudInitSecret(ref, CloudInitData{UserData: NoopUserData})
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"userdata": []byte(NoopUserData)}, secret.Data, "no networkdata key without network data")

	long := strings.Repeat("v", validation.LabelValueMaxLength)
	require.Empty(t, validation.IsDNS1123Subdomain(CloudInitSecretName(long)), "the longest VM name gives a valid Secret name")
}

// TestValidateCloudInitSize: payloads up to what a Secret holds pass;
// beyond, the refusal names the Machine, the field the payload came from
// and the sizes, and quotes no content.
func TestValidateCloudInitSize(t *testing.T) {
	ref := contract.MachineRef{Namespace: "ns1", Name: "vm1"}
	payload := func(n int) string { return strings.Repeat("p", n) }
	tests := []struct {
		name string
		data CloudInitData
		want string // "" when accepted
	}{
		{"empty", CloudInitData{}, ""},
		{"user data filling the Secret", CloudInitData{UserData: payload(MaxCloudInitBytes)}, ""},
		{"user and network data filling it together", CloudInitData{UserData: payload(MaxCloudInitBytes - 100), NetworkData: payload(100)}, ""},
		{"user data one byte over", CloudInitData{UserData: payload(MaxCloudInitBytes + 1)},
			"Machine ns1/vm1: spec.cloudInit.userData: 1048577 bytes, more than the 1048576 a Kubernetes Secret can hold"},
		{"user data from a Secret, over", CloudInitData{UserData: payload(2 * MaxCloudInitBytes), UserDataField: "spec.cloudInit.userDataSecretRef"},
			"Machine ns1/vm1: spec.cloudInit.userDataSecretRef: 2097152 bytes, more than the 1048576 a Kubernetes Secret can hold"},
		{"network data over", CloudInitData{UserData: NoopUserData, NetworkData: payload(MaxCloudInitBytes + 1), NetworkDataField: "spec.cloudInit.networkDataBase64"},
			"Machine ns1/vm1: spec.cloudInit.networkDataBase64: 1048577 bytes, more than the 1048576 a Kubernetes Secret can hold"},
		{"both under, together over", CloudInitData{UserData: payload(MaxCloudInitBytes - 1), NetworkData: payload(2), NetworkDataField: "spec.cloudInit.networkDataConfigMapRef"},
			"Machine ns1/vm1: spec.cloudInit: user data (spec.cloudInit.userData, 1048575 bytes) and network data (spec.cloudInit.networkDataConfigMapRef, 2 bytes) " +
				"add up to more than the 1048576 bytes a Kubernetes Secret can hold"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateCloudInitSize(ref, tc.data)
			_, buildErr := BuildCloudInitSecret(ref, tc.data)
			if tc.want == "" {
				require.NoError(t, err)
				require.NoError(t, buildErr)
				return
			}
			require.Equal(t, tc.want, requireSpecError(t, err).Message)
			require.Equal(t, tc.want, requireSpecError(t, buildErr).Message, "the Secret is never built over the limit")
		})
	}
}

func TestCloudInitSourceField(t *testing.T) {
	srcs := CloudInitSources(&v1alpha1.CloudInitConfig{UserDataBase64: "eA==", NetworkDataConfigMapRef: &v1alpha1.CloudInitConfigMapRef{Name: "cm"}})
	require.Equal(t, "spec.cloudInit.userDataBase64", srcs[0].Field())
	require.Equal(t, "spec.cloudInit.networkDataConfigMapRef", srcs[1].Field())
	srcs = CloudInitSources(&v1alpha1.CloudInitConfig{UserData: "x"})
	require.Equal(t, "spec.cloudInit.userData", srcs[0].Field())
	require.Equal(t, "spec.cloudInit.networkData", srcs[1].Field(), "an empty source names the inline field")
}
