package runner

import (
	"os"
	"strings"
)

// childEnv is the runner's environment without the settings that would
// point a child elsewhere: a developer's TEMPORAL_ADDRESS, TLS or API key
// for a real Temporal cluster, or KUBECONFIG for a real supervisor. The
// children get the sandbox's values on top.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TEMPORAL_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
