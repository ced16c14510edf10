package vmplan

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

func TestBuildNAD(t *testing.T) {
	m := contract.MachineRef{Namespace: "ns1", Name: "vm1"}
	tests := []struct {
		name   string
		vlan   int
		nad    string
		config string
		label  string
	}{
		{"tagged bridge vlan<id>", 42, "vlan42",
			`{"cniVersion":"1.0.0","name":"br0","plugins":[{"type":"bridge","bridge":"br0","ipam":{},"vlan":42}]}`, "42"},
		{"untagged static bridge vlan0 without a vlan key", 0, "vlan0",
			`{"cniVersion":"1.0.0","name":"br0","plugins":[{"type":"bridge","bridge":"br0","ipam":{}}]}`, "0"},
		{"negative id is bridge-br0 without the operator's vlan:-1", -1, "bridge-br0",
			`{"cniVersion":"1.0.0","name":"br0","plugins":[{"type":"bridge","bridge":"br0","ipam":{}}]}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nad, err := BuildNAD(m, tc.vlan, "1.0.0")
			require.NoError(t, err)
			require.Equal(t, tc.nad, nad.GetName())
			require.Equal(t, "ns1", nad.GetNamespace())
			require.Equal(t, NADGVK, nad.GroupVersionKind())
			cfg, _, err := unstructured.NestedString(nad.Object, "spec", "config")
			require.NoError(t, err)
			require.JSONEq(t, tc.config, cfg)
			require.True(t, json.Valid([]byte(cfg)))
			require.Equal(t, names.ManagedByValue, nad.GetLabels()[names.ManagedByLabel])
			require.Equal(t, tc.label, nad.GetLabels()[VLANIDLabel])
		})
	}
}

func TestShortNetworkConfigName(t *testing.T) {
	for in, want := range map[string]string{
		"simple-cluster-worker-default-worker-pool-0":        "simple-cluster-wrk0",
		"prod-worker-gpu-pool-3":                             "prod-worker-gpu-pool-3",
		"simple-cluster-worker-pool-12":                      "simple-cluster-wrk12",
		"simple-cluster-control-plane-1":                     "simple-cluster-ctp1",
		"vm1":                                                "vm1",
		"a-very-long-machine-name-that-exceeds-the-limit":    "a-very-long-machine-name-that-ex",
		"a-very-very-very-long-cluster-name-control-plane-0": "a-very-very-very-long-cluster-na",
	} {
		got := ShortNetworkConfigName(in)
		require.Equal(t, want, got, in)
		require.LessOrEqual(t, len(got), maxNCSpecName)
	}
}
