package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/config/check"
	"github.com/machineflow/machineflow/internal/supervisor"
)

func TestClientLimits(t *testing.T) {
	c, err := load(nil)
	require.NoError(t, err)
	assert.Equal(t, supervisor.Options{QPS: 50, Burst: 100}, c.Supervisor, "the defaults of before they were settings")
	assert.EqualValues(t, 20, c.KubevirtQPS)
	assert.Equal(t, 30, c.KubevirtBurst)

	c, err = load(map[string]string{"SUPERVISOR_QPS": "400", "SUPERVISOR_BURST": "800", "KUBEVIRT_QPS": "100", "KUBEVIRT_BURST": "150"},
		"--supervisor-qps=2.5", "--kubevirt-burst=5")
	require.NoError(t, err)
	assert.Equal(t, supervisor.Options{QPS: 2.5, Burst: 800}, c.Supervisor, "flag over variable")
	assert.EqualValues(t, 100, c.KubevirtQPS)
	assert.Equal(t, 5, c.KubevirtBurst)

	// What the supervisor client and the ClientManager are made from.
	var (
		sup     supervisor.Options
		modOpts clients.ModuleOptions
	)
	app := fx.New(Module(c), fx.Populate(&sup, &modOpts), fx.NopLogger)
	require.NoError(t, app.Err())
	assert.Equal(t, c.Supervisor, sup)
	assert.EqualValues(t, 100, modOpts.QPS)
	assert.Equal(t, 5, modOpts.Burst)
}

func TestInvalidClientLimitsAreNamed(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"zero supervisor QPS":  {map[string]string{"SUPERVISOR_QPS": "0"}, nil, `invalid configuration: SUPERVISOR_QPS=0: must be positive`},
		"negative flag":        {nil, []string{"--supervisor-qps=-5"}, `invalid configuration: SUPERVISOR_QPS=-5: must be positive`},
		"supervisor burst":     {map[string]string{"SUPERVISOR_BURST": "0"}, nil, `invalid configuration: SUPERVISOR_BURST=0: must be at least 1`},
		"KubeVirt QPS":         {map[string]string{"KUBEVIRT_QPS": "fast"}, nil, `invalid configuration: KUBEVIRT_QPS="fast": not a number (e.g. 50, 2.5)`},
		"KubeVirt burst":       {map[string]string{"KUBEVIRT_BURST": "-1"}, nil, `invalid configuration: KUBEVIRT_BURST=-1: must be at least 1`},
		"both of the clusters": {map[string]string{"KUBEVIRT_QPS": "-1", "KUBEVIRT_BURST": "0"}, nil, `invalid configuration: KUBEVIRT_QPS=-1: must be positive; KUBEVIRT_BURST=0: must be at least 1`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(tc.env, tc.args...)
			require.Error(t, err)
			assert.Equal(t, tc.want, check.Line(err))
		})
	}
}
