package contract_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"

	"github.com/machineflow/machineflow/activities/contract"
)

func TestPhasesAreVitistacks(t *testing.T) {
	for ours, theirs := range map[string]string{
		contract.PhasePending:     v1alpha1.MachinePhasePending,
		contract.PhaseCreating:    v1alpha1.MachinePhaseCreating,
		contract.PhaseRunning:     v1alpha1.MachinePhaseRunning,
		contract.PhaseStopping:    v1alpha1.MachinePhaseStopping,
		contract.PhaseStopped:     v1alpha1.MachinePhaseStopped,
		contract.PhaseTerminating: v1alpha1.MachinePhaseTerminating,
		contract.PhaseTerminated:  v1alpha1.MachinePhaseTerminated,
		contract.PhaseFailed:      v1alpha1.MachinePhaseFailed,
	} {
		require.Equal(t, theirs, ours)
	}
}

func TestBootPlanReadsRecordedPlans(t *testing.T) {
	cases := map[string]struct {
		json string
		want contract.BootPlan
	}{
		"current":              {`{"hasImage":true,"iso":true,"isoSourceType":"https"}`, contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "https"}},
		"legacy URL drops out": {`{"imageURL":"https://user:pw@example.com/a.iso"}`, contract.BootPlan{HasImage: true}},
		"empty legacy URL":     {`{"imageURL":""}`, contract.BootPlan{}},
		"no image":             {`{}`, contract.BootPlan{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got contract.BootPlan
			require.NoError(t, json.Unmarshal([]byte(tc.json), &got))
			require.Equal(t, tc.want, got)
			out, err := json.Marshal(got)
			require.NoError(t, err)
			require.NotContains(t, string(out), "pw@", "a plan written back must not carry the legacy URL")
		})
	}
	var bad contract.BootPlan
	require.ErrorContains(t, json.Unmarshal([]byte(`{"iso":"yes"}`), &bad), "decode BootPlan")
}

func TestNonRetryableLeavesRetryableOut(t *testing.T) {
	final := contract.NonRetryableErrorTypes()
	require.NotContains(t, final, contract.ErrTypeClusterUnreachable)
	require.NotContains(t, final, contract.ErrTypeWaiting)
	require.Contains(t, final, contract.ErrTypeInvalidSpec)
	require.Contains(t, final, contract.ErrTypeBootFailed)
}

func TestHasAddress(t *testing.T) {
	require.False(t, contract.VMObservation{}.HasAddress())
	require.True(t, contract.VMObservation{IPAddresses: []string{"10.0.0.2"}}.HasAddress())
	require.True(t, contract.VMObservation{IPv6Addresses: []string{"fd00::2"}}.HasAddress())
}
