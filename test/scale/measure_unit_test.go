package scale

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRequestsByRoleAndMethod(t *testing.T) {
	text := `# HELP rest_client_requests_total Number of HTTP requests, partitioned by status code, method, and host.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:1000",method="GET"} 7
rest_client_requests_total{code="404",host="127.0.0.1:1000",method="GET"} 2
rest_client_requests_total{code="201",host="127.0.0.1:2000",method="POST"} 3
rest_client_requests_total{code="200",host="other:1",method="PUT"} 1
rest_client_requests_total_other{code="200",host="127.0.0.1:1000",method="GET"} 100
go_goroutines 12
`
	got, err := parseRequests(strings.NewReader(text), map[string]string{"127.0.0.1:1000": "supervisor", "127.0.0.1:2000": "kubevirt-1"})
	require.NoError(t, err)
	assert.Equal(t, requests{
		"supervisor": {"GET": 9},
		"kubevirt-1": {"POST": 3},
		"other:1":    {"PUT": 1},
	}, got)
	assert.Equal(t, 9.0, got.total(isSupervisor))
	assert.Equal(t, 3.0, got.total(isKubevirt))

	later := requests{"supervisor": {"GET": 12, "PATCH": 1}, "kubevirt-1": {"POST": 3}, "other:1": {"PUT": 1}}
	assert.Equal(t, requests{"supervisor": {"GET": 3, "PATCH": 1}}, later.minus(got), "unchanged series drop out")
	assert.Equal(t, requests{"supervisor": {"GET": 21, "PATCH": 1}, "kubevirt-1": {"POST": 6}, "other:1": {"PUT": 2}}, later.plus(got))
	assert.Equal(t, "supervisor: GET=3 PATCH=1", later.minus(got).String())

	_, err = parseRequests(strings.NewReader(`rest_client_requests_total{code="200",host=127.0.0.1} 1`), nil)
	assert.Error(t, err, "an unquoted label value")
}

func TestParseLabelsUnescapes(t *testing.T) {
	got, err := parseLabels(`a="x\"y",b="",c="back\\slash"`)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": `x"y`, "b": "", "c": `back\slash`}, got)
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 50*time.Millisecond, percentile(ds, 50))
	assert.Equal(t, 95*time.Millisecond, percentile(ds, 95))
	assert.Equal(t, 100*time.Millisecond, percentile(ds, 100))
	assert.Equal(t, 1*time.Millisecond, percentile(ds, 0.1))
	assert.Equal(t, 100*time.Millisecond, ds[0], "the input is not sorted in place")
	assert.Equal(t, 3*time.Second, percentile([]time.Duration{3 * time.Second}, 99))
	assert.Zero(t, percentile(nil, 50))
}

func TestHostOf(t *testing.T) {
	assert.Equal(t, "127.0.0.1:6443", hostOf("https://127.0.0.1:6443"))
	assert.Equal(t, "127.0.0.1:6443", hostOf("127.0.0.1:6443"))
}

func TestProcessAccounting(t *testing.T) {
	procs, err := descendants()
	require.NoError(t, err)
	require.NotEmpty(t, procs)
	self := procs[0]
	assert.NotEmpty(t, self.args)
	rss, err := peakRSS(self.pid)
	require.NoError(t, err)
	assert.Positive(t, rss)
	busy, total, err := machineCPU()
	require.NoError(t, err)
	assert.Positive(t, total)
	assert.LessOrEqual(t, busy, total)
	assert.Equal(t, "2", flagValue([]string{"--a=1", "--secure-port=2"}, "secure-port"))
}
