// Package manifest reads multi-document YAML manifests and server-side
// applies them, so the sandbox's seed objects and the examples are written
// exactly as `kubectl apply --server-side` would write them, without kubectl.
//
// Objects are handled unstructured: vitistack's Go types drop fields that
// their CRDs require (MachineClass spec.default=false is omitted by
// `omitempty`), and an unstructured object sends what the file says. A
// document's status, if any, is applied to the status subresource, which is
// how the sandbox stands in for operators that write status (a
// NetworkNamespace's VLAN id).
package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the server-side apply field manager of everything applied here.
const FieldOwner = "machineflow-sandbox"

// Object is one decoded document with where it came from, for messages.
type Object struct {
	*unstructured.Unstructured
	// Source is "<file>#<n>": the n-th object of the file, 1-based;
	// empty and comment-only documents do not count.
	Source string
}

// String names the object by kind, namespace and name; it never prints data.
func (o Object) String() string {
	if ns := o.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", o.GetKind(), ns, o.GetName())
	}
	return fmt.Sprintf("%s %s", o.GetKind(), o.GetName())
}

// Decode reads every non-empty document of a YAML stream; source names the
// stream in errors. A document without apiVersion, kind or metadata.name is
// an error, not skipped: a typo must not silently drop an object.
func Decode(r io.Reader, source string) ([]Object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []Object
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		src := fmt.Sprintf("%s#%d", source, len(objs)+1)
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", src, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		var missing []string
		if u.GetAPIVersion() == "" {
			missing = append(missing, "apiVersion")
		}
		if u.GetKind() == "" {
			missing = append(missing, "kind")
		}
		if u.GetName() == "" {
			missing = append(missing, "metadata.name")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("decoding %s: missing %s", src, strings.Join(missing, ", "))
		}
		objs = append(objs, Object{Unstructured: u, Source: src})
	}
}

// ReadPaths decodes the YAML files named by paths; a directory stands for
// its *.yaml and *.yml files in lexical order. Objects keep file order and
// document order within a file.
func ReadPaths(paths ...string) ([]Object, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		var inDir []string
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				inDir = append(inDir, filepath.Join(p, e.Name()))
			}
		}
		if len(inDir) == 0 {
			return nil, fmt.Errorf("reading manifests: directory %s has no .yaml files", p)
		}
		slices.Sort(inDir)
		files = append(files, inDir...)
	}
	var objs []Object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		decoded, err := Decode(bytes.NewReader(b), f)
		if err != nil {
			return nil, err
		}
		objs = append(objs, decoded...)
	}
	return objs, nil
}

// Apply server-side applies each object in order, then its status if the
// document has one, taking ownership of conflicting fields (the files are
// the source of truth, as with `kubectl apply --server-side
// --force-conflicts`). It stops at the first failure; errors name the object
// and its source, never its data.
func Apply(ctx context.Context, c client.Client, objs []Object) error {
	for _, o := range objs {
		obj := o.DeepCopy()
		status, hasStatus := obj.Object["status"]
		delete(obj.Object, "status")
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s (%s): %w", o, o.Source, err)
		}
		if !hasStatus {
			continue
		}
		st := &unstructured.Unstructured{Object: map[string]any{"status": status}}
		st.SetGroupVersionKind(o.GroupVersionKind())
		st.SetNamespace(o.GetNamespace())
		st.SetName(o.GetName())
		if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(st), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying the status of %s (%s): %w", o, o.Source, err)
		}
	}
	return nil
}
