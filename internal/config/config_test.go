package config

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/config/check"
	"github.com/machineflow/machineflow/internal/logging"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

func load(env map[string]string, args ...string) (Config, error) {
	return Load(args, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
}

func TestDefaults(t *testing.T) {
	c, err := load(nil)
	require.NoError(t, err)
	assert.Equal(t, temporalclient.DefaultOptions(), c.Temporal)
	assert.Equal(t, "machineflow", c.TaskQueue)
	assert.Equal(t, "", c.Supervisor.Kubeconfig)
	assert.Equal(t, "machineflow-system", c.ConfigNamespace)
	assert.Equal(t, "", c.DefaultKubevirtConfig)
	assert.Equal(t, activities.DefaultSettings(), c.Activities)
	assert.Equal(t, ClientManagerReal, c.ClientManager)
	assert.Equal(t, clients.ResilienceOptions{Attempts: 3, FailureThreshold: 5, CoolDown: 30 * time.Second}, c.Resilience)
	assert.Equal(t, ":9090", c.Metrics.Address)
	assert.Equal(t, logging.DefaultOptions(), c.Log)
	assert.Equal(t, 30*time.Second, c.StopTimeout)
	assert.Equal(t, 100, c.MaxTaskPollers)
}

func TestEnvironmentAndFlagsWin(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, writeFile(kubeconfig))
	c, err := load(map[string]string{
		"TEMPORAL_ADDRESS":        "temporal:7233",
		"TASK_QUEUE":              "env-queue",
		"CONFIG_NAMESPACE":        "secrets",
		"DEFAULT_KUBEVIRT_CONFIG": "cluster-a",
		"CLIENT_MANAGER":          "mock",
		"CPU_MODEL":               "host-passthrough",
		"IP_SOURCE":               "vmi",
		"STORAGE_CLASS_NAME":      "fast",
		"METRICS_ADDRESS":         "127.0.0.1:9191",
		"LOG_FORMAT":              "text",
		"WORKER_STOP_TIMEOUT":     "45s",
		"CIRCUIT_COOL_DOWN":       "1m",
		"MAX_TASK_POLLERS":        "8",
	},
		"--task-queue", "flag-queue",
		"--ip-source", "networkconfiguration",
		"--kubeconfig", kubeconfig,
		"--log-level", "debug",
		"--max-task-pollers", "16",
	)
	require.NoError(t, err)
	assert.Equal(t, "temporal:7233", c.Temporal.Address)
	assert.Equal(t, "flag-queue", c.TaskQueue, "flag over variable")
	assert.Equal(t, kubeconfig, c.Supervisor.Kubeconfig)
	assert.Equal(t, "secrets", c.ConfigNamespace)
	assert.Equal(t, "cluster-a", c.DefaultKubevirtConfig)
	assert.Equal(t, ClientManagerMock, c.ClientManager)
	assert.Equal(t, "host-passthrough", c.Activities.CPUModel)
	assert.Equal(t, "networkconfiguration", c.Activities.IPSource, "flag over the operator's variable")
	assert.Equal(t, "fast", c.Activities.StorageClassName)
	assert.Equal(t, "127.0.0.1:9191", c.Metrics.Address)
	assert.Equal(t, logging.Options{Format: "text", Level: "debug"}, c.Log)
	assert.Equal(t, 45*time.Second, c.StopTimeout)
	assert.Equal(t, time.Minute, c.Resilience.CoolDown)
	assert.Equal(t, 16, c.MaxTaskPollers, "flag over variable")
}

func TestInvalidSettingsAreNamed(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"ip source":        {map[string]string{"IP_SOURCE": "foo"}, nil, `invalid configuration: activity settings: IP_SOURCE="foo": must be vmi or networkconfiguration`},
		"ip source flag":   {nil, []string{"--ip-source", "foo"}, `invalid configuration: activity settings: IP_SOURCE="foo": must be vmi or networkconfiguration`},
		"client manager":   {map[string]string{"CLIENT_MANAGER": "fake"}, nil, `invalid configuration: CLIENT_MANAGER="fake": must be real or mock`},
		"stop timeout":     {map[string]string{"WORKER_STOP_TIMEOUT": "forever"}, nil, `invalid configuration: WORKER_STOP_TIMEOUT="forever": not a duration (e.g. 30s, 2m)`},
		"negative stop":    {map[string]string{"WORKER_STOP_TIMEOUT": "-1s"}, nil, `invalid configuration: WORKER_STOP_TIMEOUT=-1s: must be positive`},
		"namespace":        {map[string]string{"CONFIG_NAMESPACE": "Not_A_Namespace"}, nil, `invalid configuration: CONFIG_NAMESPACE="Not_A_Namespace": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		"default config":   {map[string]string{"DEFAULT_KUBEVIRT_CONFIG": "A B"}, nil, `invalid configuration: DEFAULT_KUBEVIRT_CONFIG="A B": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		"metrics address":  {map[string]string{"METRICS_ADDRESS": "9090"}, nil, `invalid configuration: METRICS_ADDRESS="9090": must be [host]:port`},
		"log format":       {map[string]string{"LOG_FORMAT": "xml"}, nil, `invalid configuration: LOG_FORMAT="xml": must be json or text`},
		"temporal address": {map[string]string{"TEMPORAL_ADDRESS": "nohost"}, nil, `invalid configuration: TEMPORAL_ADDRESS="nohost": must be host:port`},
		"task queue":       {map[string]string{"TASK_QUEUE": ""}, nil, `invalid configuration: TASK_QUEUE: must not be empty`},
		"retry attempts":   {map[string]string{"CLUSTER_RETRY_ATTEMPTS": "0"}, nil, `invalid configuration: CLUSTER_RETRY_ATTEMPTS=0: must be at least 1`},
		"breaker":          {map[string]string{"CIRCUIT_FAILURE_THRESHOLD": "0"}, nil, `invalid configuration: CIRCUIT_FAILURE_THRESHOLD=0: must be at least 1`},
		"task pollers":     {map[string]string{"MAX_TASK_POLLERS": "0"}, nil, `invalid configuration: MAX_TASK_POLLERS=0: must be at least 1`},
		"kubeconfig":       {nil, []string{"--kubeconfig", "/does/not/exist"}, `invalid configuration: --kubeconfig: stat /does/not/exist: no such file or directory`},
		"argument":         {nil, []string{"extra"}, `invalid configuration: unexpected argument "extra": the worker takes flags only`},
		"two at once": {map[string]string{"CLIENT_MANAGER": "fake", "MAC_SET": "zz"}, nil,
			`invalid configuration: activity settings: MAC_SET="zz": must be two hex digits; CLIENT_MANAGER="fake": must be real or mock`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(tc.env, tc.args...)
			require.Error(t, err)
			assert.Equal(t, tc.want, check.Line(err))
			assert.NotContains(t, check.Line(err), "\n", "one line")
		})
	}
}

func TestAPIKeyNeverInErrorsOrUsage(t *testing.T) {
	const key = "tmprl-api-key-secret"
	var usage bytes.Buffer
	_, err := Load([]string{"-h"}, func(k string) (string, bool) {
		if k == "TEMPORAL_API_KEY" {
			return key, true
		}
		return "", false
	}, &usage)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, usage.String(), "TEMPORAL_API_KEY")
	assert.Contains(t, usage.String(), "$IP_SOURCE")
	assert.NotContains(t, usage.String(), key)

	_, err = load(map[string]string{"TEMPORAL_API_KEY": key, "TEMPORAL_ADDRESS": "bad", "LOG_LEVEL": "loud"})
	require.Error(t, err)
	assert.NotContains(t, check.Line(err), key)
	assert.True(t, strings.HasPrefix(check.Line(err), "invalid configuration: "))
}

func writeFile(path string) error {
	return os.WriteFile(path, []byte("apiVersion: v1\nkind: Config\n"), 0o600)
}
