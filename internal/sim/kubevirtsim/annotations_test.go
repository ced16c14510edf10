package kubevirtsim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

func TestAnnotationKeysUseTheVMPassThroughPrefix(t *testing.T) {
	assert.Equal(t, "vm.machineflow.io/sim-failure", FailureAnnotation)
	assert.Equal(t, "vm.machineflow.io/sim-boot-delay", BootDelayAnnotation)
	assert.Equal(t, "vm.machineflow.io/sim-never-ready", NeverReadyAnnotation)
}

func TestParseBehaviour(t *testing.T) {
	const def = 3 * time.Second
	tests := []struct {
		name    string
		ann     map[string]string
		want    behaviour
		wantErr string
	}{
		{name: "no annotations boot with the default delay", want: behaviour{bootDelay: def}},
		{name: "unrelated annotations are ignored", ann: map[string]string{"vm.machineflow.io/other": "x"}, want: behaviour{bootDelay: def}},
		{name: "failure", ann: map[string]string{FailureAnnotation: "Unschedulable"}, want: behaviour{failure: Unschedulable, bootDelay: def}},
		{name: "boot delay", ann: map[string]string{BootDelayAnnotation: "250ms"}, want: behaviour{bootDelay: 250 * time.Millisecond}},
		{name: "zero boot delay", ann: map[string]string{BootDelayAnnotation: "0s"}, want: behaviour{}},
		{name: "never ready", ann: map[string]string{NeverReadyAnnotation: "true"}, want: behaviour{bootDelay: def, neverReady: true}},
		{name: "never ready false", ann: map[string]string{NeverReadyAnnotation: "false"}, want: behaviour{bootDelay: def}},
		{
			name:    "unknown failure names the annotation and the accepted values",
			ann:     map[string]string{FailureAnnotation: "Exploded"},
			wantErr: `annotation vm.machineflow.io/sim-failure: unknown failure "Exploded", want one of ErrImagePull, ImagePullBackOff, CrashLoopBackOff, Unschedulable, DataVolumeError, PvcNotFound`,
		},
		{name: "failure is case sensitive", ann: map[string]string{FailureAnnotation: "errimagepull"}, wantErr: "unknown failure"},
		{name: "bad duration", ann: map[string]string{BootDelayAnnotation: "soon"}, wantErr: `annotation vm.machineflow.io/sim-boot-delay: "soon" is not a non-negative Go duration`},
		{name: "negative duration", ann: map[string]string{BootDelayAnnotation: "-1s"}, wantErr: "not a non-negative Go duration"},
		{name: "bad boolean", ann: map[string]string{NeverReadyAnnotation: "forever"}, wantErr: `annotation vm.machineflow.io/sim-never-ready: "forever" is not a boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBehaviour(tt.ann, def)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestFailurePrintableStatus(t *testing.T) {
	want := map[Failure]kubevirtv1.VirtualMachinePrintableStatus{
		ErrImagePull:     "ErrImagePull",
		ImagePullBackOff: "ImagePullBackOff",
		CrashLoopBackOff: "CrashLoopBackOff",
		Unschedulable:    "ErrorUnschedulable",
		DataVolumeError:  "DataVolumeError",
		PvcNotFound:      "ErrorPvcNotFound",
	}
	require.Len(t, Failures, len(want))
	for _, f := range Failures {
		assert.Equal(t, want[f], f.PrintableStatus(), f)
	}
	assert.Equal(t, kubevirtv1.VirtualMachineStatusUnknown, Failure("nope").PrintableStatus())
}
