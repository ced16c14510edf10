package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestVitistackCRDsInSync fails when deploy/crds/vitistack differs from the
// CRDs of the vitistack/common version in go.mod. Fix: `make crds`.
func TestVitistackCRDsInSync(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/vitistack/common")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err, "go list -m github.com/vitistack/common")
	upstream := filepath.Join(strings.TrimSpace(string(out)), "crds")
	synced := filepath.Join(root, "deploy", "crds", "vitistack")

	want := yamlFiles(t, upstream)
	require.NotEmpty(t, want, "no CRDs in %s", upstream)
	got := slices.DeleteFunc(yamlFiles(t, synced), func(f string) bool { return f == "kustomization.yaml" })
	require.Equal(t, want, got, "files in %s differ from %s: run `make crds`", synced, upstream)
	for _, f := range want {
		u, err := os.ReadFile(filepath.Join(upstream, f))
		require.NoError(t, err)
		s, err := os.ReadFile(filepath.Join(synced, f))
		require.NoError(t, err)
		assert.Equal(t, string(u), string(s), "%s differs from upstream: run `make crds`", f)
	}

	b, err := os.ReadFile(filepath.Join(synced, "kustomization.yaml"))
	require.NoError(t, err)
	var k struct {
		Kind      string   `json:"kind"`
		Resources []string `json:"resources"`
	}
	require.NoError(t, yaml.Unmarshal(b, &k))
	assert.Equal(t, "Kustomization", k.Kind)
	assert.Equal(t, want, k.Resources, "kustomization.yaml must list every CRD: run `make crds`")
}

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			out = append(out, e.Name())
		}
	}
	return out // os.ReadDir sorts by name
}

// TestKubevirtCRDsInSync fails when test/crds/kubevirt differs from what
// crdgen generates from the KubeVirt, CDI and Multus modules pinned in
// hack/tools/kubevirt. Fix: `make kubevirt-crds`.
func TestKubevirtCRDsInSync(t *testing.T) {
	root := repoRoot(t)
	bin, err := binaryDir(root)
	require.NoError(t, err)
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/k8snetworkplumbingwg/network-attachment-definition-client")
	cmd.Dir = filepath.Join(root, "hack", "tools", "kubevirt")
	out, err := cmd.Output()
	require.NoError(t, err, "go list -m in hack/tools/kubevirt")
	generated := t.TempDir()
	gen := exec.Command(filepath.Join(bin, "crdgen"), "-out", generated,
		"-nad-crd", filepath.Join(strings.TrimSpace(string(out)), "artifacts", "networks-crd.yaml"))
	msg, err := gen.CombinedOutput()
	require.NoError(t, err, "crdgen (build it with `make tools`): %s", msg)

	checkedIn := filepath.Join(root, "test", "crds", "kubevirt")
	want := yamlFiles(t, generated)
	require.NotEmpty(t, want)
	require.Equal(t, want, yamlFiles(t, checkedIn), "files in %s differ from crdgen's: run `make kubevirt-crds`", checkedIn)
	for _, f := range want {
		g, err := os.ReadFile(filepath.Join(generated, f))
		require.NoError(t, err)
		c, err := os.ReadFile(filepath.Join(checkedIn, f))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(g, c), "%s differs from crdgen's: run `make kubevirt-crds`", f)
	}
}
