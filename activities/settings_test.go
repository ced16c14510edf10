package activities

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/vmstatus"
)

func TestLoadSettingsOverlaysTheVariables(t *testing.T) {
	s, err := LoadSettings(func(k string) (string, bool) {
		v, ok := map[string]string{"IP_SOURCE": " NetworkConfiguration ", "MAC_SET": "ab", "STORAGE_CLASS_NAME": "fast"}[k]
		return v, ok
	})
	require.NoError(t, err)
	want := DefaultSettings()
	want.IPSource, want.MACSet, want.StorageClassName = vmstatus.IPSourceNetworkConfiguration, "ab", "fast"
	assert.Equal(t, want, s)
}

func TestSettingsErrorsNameSettingValueAndRule(t *testing.T) {
	s, err := LoadSettings(func(k string) (string, bool) {
		v, ok := map[string]string{
			"CPU_MODEL": " ", "PVC_VOLUME_MODE": "Raw", "PVC_ACCESS_MODE": "RWX", "IP_SOURCE": "foo",
			"MAC_SET": "zz", "NETWORK_ATTACHMENT_DEFINITION_CNI_VERSION": "",
		}[k]
		return v, ok
	})
	assert.Equal(t, Settings{}, s)
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "activity settings: "), err.Error())
	assert.Equal(t, []string{
		`CPU_MODEL="": must not be empty`,
		`PVC_VOLUME_MODE="Raw": must be Block or Filesystem`,
		`PVC_ACCESS_MODE="RWX": must be ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod`,
		`IP_SOURCE="foo": must be vmi or networkconfiguration`,
		`MAC_SET="zz": must be two hex digits`,
		`NETWORK_ATTACHMENT_DEFINITION_CNI_VERSION="": must not be empty`,
	}, strings.Split(strings.TrimPrefix(err.Error(), "activity settings: "), "\n"))

	fields := DefaultSettings()
	fields.DefaultISOSize, fields.ISOHeadTimeout, fields.PollInitial, fields.PollMax = "-1Gi", 0, time.Second, time.Millisecond
	assert.Equal(t, []string{
		`DefaultISOSize="-1Gi": must be a positive quantity`,
		`ISOHeadTimeout=0s: must be positive`,
		`PollInitial=1s, PollMax=1ms: want 0 < PollInitial <= PollMax`,
	}, strings.Split(fields.Validate().Error(), "\n"))
}
