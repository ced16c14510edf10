package vmplan

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/scheme"
)

// judgeNamespace is where built VMs are judged, whatever their Machine's
// namespace: KubeVirt's admission does not depend on it.
const judgeNamespace = "judged"

// judgeKubeconfigEnv names the file of the judge's kubeconfig for fuzz
// workers: the fuzzing coordinator starts the API server once and its
// workers, separate processes that inherit its environment, share it.
const judgeKubeconfigEnv = "VMPLAN_JUDGE_KUBECONFIG"

// judge is a KubeVirt API server, with KubeVirt's CRD schemas and
// admission webhooks, that every built VM is put to. It starts on first
// use, once per test process, and stops in TestMain.
var judge struct {
	once sync.Once
	env  *testenv.Env
	c    client.Client
	err  error
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	flag.Parse()
	defer func() {
		if judge.env != nil {
			if err := judge.env.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "vmplan: stopping the KubeVirt API server:", err)
			}
		}
	}()
	worker := flag.Lookup("test.fuzzworker")
	coordinator := flag.Lookup("test.fuzz").Value.String() != "" && (worker == nil || worker.Value.String() != "true")
	if coordinator && !testing.Short() && os.Getenv(judgeKubeconfigEnv) == "" {
		dir, err := os.MkdirTemp("", "vmplan-judge-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmplan:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		file := filepath.Join(dir, "kubeconfig")
		if err = startJudge(); err == nil {
			if err = os.WriteFile(file, judge.env.Clusters[0].Kubeconfig, 0o600); err == nil {
				err = os.Setenv(judgeKubeconfigEnv, file)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmplan: the judge for the fuzz workers:", err)
			return 1
		}
	}
	return m.Run()
}

// startJudge starts the judge's API server, or connects to the one the
// fuzzing coordinator started.
func startJudge() error {
	judge.once.Do(func() {
		if file := os.Getenv(judgeKubeconfigEnv); file != "" {
			judge.c, judge.err = clientFromKubeconfig(file)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if judge.env, judge.err = testenv.Start(ctx, testenv.Options{Clusters: 1}); judge.err != nil {
			return
		}
		judge.c = judge.env.Clusters[0].Client
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: judgeNamespace}}
		judge.err = judge.c.Create(ctx, ns)
	})
	if judge.err != nil {
		return fmt.Errorf("the KubeVirt API server that judges VMs: %w", judge.err)
	}
	return nil
}

func clientFromKubeconfig(file string) (client.Client, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s, err := scheme.New()
	if err != nil {
		return nil, err
	}
	return testenv.NewClient(b, s)
}

// requireAdmitted fails t unless KubeVirt admits vm: a dry-run create
// runs its mutating and validating webhooks and the CRD's schema and
// stores nothing. With -short, which starts no API servers, it checks
// nothing.
func requireAdmitted(t testing.TB, vm *kubevirtv1.VirtualMachine) {
	t.Helper()
	if testing.Short() {
		return
	}
	if err := startJudge(); err != nil {
		t.Fatal(err)
	}
	vm = vm.DeepCopy()
	vm.Namespace = judgeNamespace
	if err := judge.c.Create(context.Background(), vm, client.DryRunAll); err != nil {
		t.Fatalf("KubeVirt refuses the VirtualMachine built for Machine %s: %v", vm.Name, err)
	}
}
