package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/machineflow/machineflow/internal/harness/testenv"
)

// kubeconfigFiles are the kubeconfigs the sandbox publishes in its run
// directory. They hold client keys: mode 0600, and never logged.
type kubeconfigFiles struct {
	dir      string
	clusters int
}

func newKubeconfigFiles(dir string, clusters int) (*kubeconfigFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	return &kubeconfigFiles{dir: dir, clusters: clusters}, nil
}

// supervisor is the readiness marker and what machineflow's worker and
// controller use: the supervisor's machineflow user.
func (f *kubeconfigFiles) supervisor() string {
	return filepath.Join(f.dir, "supervisor.kubeconfig")
}

func (f *kubeconfigFiles) admin() string {
	return filepath.Join(f.dir, "admin.kubeconfig")
}

func (f *kubeconfigFiles) cluster(name string) string {
	return filepath.Join(f.dir, name+".kubeconfig")
}

// write publishes every kubeconfig, the supervisor's last, each by rename.
func (f *kubeconfigFiles) write(env *testenv.Env) error {
	admin, err := adminKubeconfig(env.Supervisor.Config)
	if err != nil {
		return err
	}
	if err := writeAtomic(f.admin(), admin); err != nil {
		return err
	}
	for _, c := range env.Clusters {
		if err := writeAtomic(f.cluster(c.Name), c.Kubeconfig); err != nil {
			return err
		}
	}
	return writeAtomic(f.supervisor(), env.Supervisor.Kubeconfig)
}

// removeAll removes the files, the supervisor's first so a reader stops
// seeing "ready" before anything else goes.
func (f *kubeconfigFiles) removeAll() error {
	paths := []string{f.supervisor(), f.admin()}
	for i := 1; i <= f.clusters; i++ {
		paths = append(paths, f.cluster(testenv.ClusterName(i)))
	}
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// CreateTemp already made it 0600.
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// adminKubeconfig renders the harness's admin REST config (client
// certificate) as a kubeconfig for kubectl.
func adminKubeconfig(cfg *rest.Config) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["sandbox-supervisor"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["sandbox-supervisor"] = &clientcmdapi.Context{Cluster: "sandbox-supervisor", AuthInfo: "admin"}
	kc.CurrentContext = "sandbox-supervisor"
	b, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("rendering the supervisor admin kubeconfig: %w", err)
	}
	return b, nil
}
