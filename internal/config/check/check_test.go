package check

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEachRuleNamesTheSettingAndTheRule(t *testing.T) {
	for name, tc := range map[string]struct {
		check func(*Problems)
		want  string // "" means no problem
	}{
		"empty":             {func(p *Problems) { p.NotEmpty("TASK_QUEUE", "") }, "TASK_QUEUE: must not be empty"},
		"not empty":         {func(p *Problems) { p.NotEmpty("TASK_QUEUE", "q") }, ""},
		"zero duration":     {func(p *Problems) { p.Positive("STOP_TIMEOUT", 0) }, "STOP_TIMEOUT=0s: must be positive"},
		"negative duration": {func(p *Problems) { p.Positive("STOP_TIMEOUT", -time.Second) }, "STOP_TIMEOUT=-1s: must be positive"},
		"positive duration": {func(p *Problems) { p.Positive("STOP_TIMEOUT", time.Nanosecond) }, ""},
		"zero rate":         {func(p *Problems) { p.PositiveNumber("QPS", 0) }, "QPS=0: must be positive"},
		"negative rate":     {func(p *Problems) { p.PositiveNumber("QPS", -2.5) }, "QPS=-2.5: must be positive"},
		"fractional rate":   {func(p *Problems) { p.PositiveNumber("QPS", 0.5) }, ""},
		"zero count":        {func(p *Problems) { p.AtLeastOne("ATTEMPTS", 0) }, "ATTEMPTS=0: must be at least 1"},
		"one":               {func(p *Problems) { p.AtLeastOne("ATTEMPTS", 1) }, ""},
		"port only":         {func(p *Problems) { p.Address("METRICS_ADDRESS", "9090") }, `METRICS_ADDRESS="9090": must be [host]:port`},
		"any host":          {func(p *Problems) { p.Address("METRICS_ADDRESS", ":9090") }, ""},
		"host and port":     {func(p *Problems) { p.Address("METRICS_ADDRESS", "127.0.0.1:9090") }, ""},
		"bad label":         {func(p *Problems) { p.DNSLabel("NS", "Not_A_Namespace") }, `NS="Not_A_Namespace": a lowercase RFC 1123 label must consist of`},
		"label":             {func(p *Problems) { p.DNSLabel("NS", "machineflow-system") }, ""},
		"bad subdomain":     {func(p *Problems) { p.DNSSubdomain("ID", "A B") }, `ID="A B": a lowercase RFC 1123 subdomain must consist of`},
		"subdomain":         {func(p *Problems) { p.DNSSubdomain("ID", "a.b") }, ""},
		"missing file":      {func(p *Problems) { p.File("--kubeconfig", "/does/not/exist") }, "--kubeconfig: stat /does/not/exist: no such file or directory"},
		"no file given":     {func(p *Problems) { p.File("--kubeconfig", "") }, ""},
		"existing file":     {func(p *Problems) { p.File("--kubeconfig", "check_test.go") }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			var p Problems
			tc.check(&p)
			if tc.want == "" {
				assert.NoError(t, p.Err())
				return
			}
			require.Error(t, p.Err())
			assert.True(t, strings.HasPrefix(p.Err().Error(), tc.want), "got %q", p.Err())
		})
	}
}

func TestProblemsCollectEveryOneAndSkipNil(t *testing.T) {
	var p Problems
	require.NoError(t, p.Err(), "the zero value has no problem")
	cause := errors.New("TEMPORAL_ADDRESS=\"x\": must be host:port")
	p.Add(nil)
	p.Add(cause)
	p.NotEmpty("TASK_QUEUE", "")
	p.Addf("REQUEUE_MIN=%s, REQUEUE_MAX=%s: want 0 < min <= max", time.Minute, time.Second)
	err := p.Err()
	require.ErrorIs(t, err, cause)
	assert.Equal(t, []string{
		`TEMPORAL_ADDRESS="x": must be host:port`,
		"TASK_QUEUE: must not be empty",
		"REQUEUE_MIN=1m0s, REQUEUE_MAX=1s: want 0 < min <= max",
	}, strings.Split(err.Error(), "\n"))
}

func TestExitStatus(t *testing.T) {
	var out bytes.Buffer
	assert.Equal(t, 0, ExitStatus(&out, flag.ErrHelp))
	assert.Equal(t, 0, ExitStatus(&out, errors.Join(errors.New("wrapped"), flag.ErrHelp)))
	assert.Empty(t, out.String(), "after -h the flag package has printed the usage")

	var p Problems
	p.NotEmpty("TASK_QUEUE", "")
	p.Positive("STOP_TIMEOUT", 0)
	assert.Equal(t, 2, ExitStatus(&out, p.Err()))
	assert.Equal(t, "invalid configuration: TASK_QUEUE: must not be empty; STOP_TIMEOUT=0s: must be positive\n", out.String())
	assert.Equal(t, strings.TrimSuffix(out.String(), "\n"), Line(p.Err()))
}
