package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/testenv"
)

func TestDecode(t *testing.T) {
	objs, err := Decode(strings.NewReader(`
# a comment before the first document
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: ns}
---
---
# only a comment
---
apiVersion: vitistack.io/v1alpha1
kind: MachineClass
metadata: {name: small}
spec: {enabled: true}
`), "f.yaml")
	require.NoError(t, err)
	require.Len(t, objs, 2)
	assert.Equal(t, "ConfigMap ns/a", objs[0].String())
	assert.Equal(t, "f.yaml#1", objs[0].Source)
	assert.Equal(t, "MachineClass small", objs[1].String())
	// Empty and comment-only documents do not count.
	assert.Equal(t, "f.yaml#2", objs[1].Source)
}

func TestDecodeRejectsIncompleteDocuments(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"no kind":     {"apiVersion: v1\nmetadata: {name: a}\n", "f.yaml#2: missing kind"},
		"no name":     {"apiVersion: v1\nkind: Secret\n", "f.yaml#2: missing metadata.name"},
		"no anything": {"spec: {}\n", "f.yaml#2: missing apiVersion, kind, metadata.name"},
		"not yaml":    {"kind: [\n", "decoding f.yaml#2"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n"+tc.doc), "f.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestReadPaths(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	doc := func(name string) string { return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n" }
	write("b.yaml", doc("b"))
	write("a.yml", doc("a1")+"---\n"+doc("a2"))
	write("README.md", "not a manifest")
	single := write("single.json", `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "json"}}`)

	objs, err := ReadPaths(single, dir)
	require.NoError(t, err)
	var got []string
	for _, o := range objs {
		got = append(got, o.GetName())
	}
	// The named file first, then the directory's YAML files by name.
	assert.Equal(t, []string{"json", "a1", "a2", "b"}, got)

	_, err = ReadPaths(filepath.Join(dir, "missing.yaml"))
	assert.ErrorContains(t, err, "missing.yaml")

	empty := t.TempDir()
	_, err = ReadPaths(empty)
	assert.ErrorContains(t, err, "directory "+empty+" has no .yaml files")
}

// TestApply runs against a real API server with the vitistack CRDs: the
// point of applying unstructured is that the CRDs' required fields and
// status subresources behave as with kubectl.
func TestApply(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 1})
	c := env.Supervisor.Client
	ctx := t.Context()

	objs, err := Decode(strings.NewReader(`
apiVersion: vitistack.io/v1alpha1
kind: MachineClass
metadata: {name: medium}
spec:
  category: standard
  enabled: true
  default: false
  machineProviders: [kubevirt]
  cpu: {cores: 2}
  memory: {quantity: 4Gi}
---
apiVersion: vitistack.io/v1alpha1
kind: NetworkNamespace
metadata: {name: vlan-7, namespace: default}
spec: {datacenterIdentifier: dc1, supervisorIdentifier: sup}
status: {vlanId: 7}
`), "test.yaml")
	require.NoError(t, err)
	require.NoError(t, Apply(ctx, c, objs))

	class := &v1alpha1.MachineClass{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "medium"}, class))
	assert.True(t, class.Spec.Enabled)
	assert.Equal(t, "4Gi", class.Spec.Memory.Quantity.String())
	netns := &v1alpha1.NetworkNamespace{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "vlan-7"}, netns))
	assert.Equal(t, 7, netns.Status.VlanID, "status is applied to the status subresource")
	assert.True(t, managedBy(netns.ManagedFields, FieldOwner), "field manager %s owns the object: %+v", FieldOwner, netns.ManagedFields)

	// Applying the same manifests again changes nothing.
	before := netns.ResourceVersion
	require.NoError(t, Apply(ctx, c, objs))
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "vlan-7"}, netns))
	assert.Equal(t, before, netns.ResourceVersion)

	// The CRD's validation is the API server's: a MachineClass without its
	// required fields is refused, and the error names object and source.
	bad, err := Decode(strings.NewReader("apiVersion: vitistack.io/v1alpha1\nkind: MachineClass\nmetadata: {name: bad}\nspec: {enabled: true}\n"), "bad.yaml")
	require.NoError(t, err)
	err = Apply(ctx, c, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "applying MachineClass bad (bad.yaml#1)")
	assert.Contains(t, err.Error(), "spec.machineProviders: Required value")
}

func managedBy(fields []metav1.ManagedFieldsEntry, manager string) bool {
	for _, f := range fields {
		if f.Manager == manager {
			return true
		}
	}
	return false
}
