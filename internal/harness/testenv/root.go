package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
)

const modulePath = "github.com/machineflow/machineflow"

// RepoRoot returns the root of the machineflow checkout: the directory whose
// go.mod declares our module. It starts from this source file, which is on
// disk for `go test` builds, and falls back to the working directory for
// binaries built with -trimpath (their source paths are module paths).
func RepoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		if root, ok := findModuleRoot(dir); ok {
			return root, nil
		}
	}
	return "", fmt.Errorf("no go.mod for module %s above %v: run from inside the machineflow repository", modulePath, starts)
}

func findModuleRoot(dir string) (string, bool) {
	for {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// isModuleRoot reports whether gomod declares our module; the tools module in
// hack/tools has a go.mod of its own and must not be mistaken for the root.
func isModuleRoot(gomod string) bool {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := bytes.Fields(sc.Bytes()); len(f) == 2 && string(f[0]) == "module" {
			return string(f[1]) == modulePath
		}
	}
	return false
}

// binaryDir returns the directory with kube-apiserver, etcd and KubeVirt's
// webhook server, checking that they exist so a fresh checkout gets a useful error instead of envtest's.
func binaryDir(root string) (string, error) {
	dir := filepath.Join(root, "bin")
	if env := os.Getenv("KUBEBUILDER_ASSETS"); env != "" {
		dir = env
	}
	var missing []error
	for _, name := range []string{"kube-apiserver", "etcd", kubevirtadmission.BinaryName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, err)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("test binaries missing in %s (run `make tools`): %w", dir, errors.Join(missing...))
	}
	return dir, nil
}
