package activities

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/testsuite"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testenv/simulated"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// suite is one supervisor and two KubeVirt clusters with the simulator
// running, shared by the integration tests; each test works in its own
// namespace.
type suite struct {
	env      *testenv.Env
	acts     *Activities
	settings Settings
	clients  *clients.KubevirtClientManager
	iso      *isoServer
	// secrets lists strings no activity result may contain.
	secrets []string
}

// isoServer answers HEAD with a Content-Length and counts requests.
type isoServer struct {
	*httptest.Server
	heads atomic.Int32
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	env := testenv.New(t, testenv.Options{Clusters: 2})
	cm := clients.NewKubevirtClientManager(env.Supervisor.Client, env.Scheme, env.ConfigNamespace)

	simulated.Start(t, env, kubevirtsim.Options{
		AddressPool: "10.100.0.0/16", BootDelay: 300 * time.Millisecond, TerminationDelay: 100 * time.Millisecond, PollInterval: 50 * time.Millisecond,
	})

	iso := &isoServer{}
	iso.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iso.heads.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(int64(3)<<30))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(iso.Close)

	settings := DefaultSettings()
	settings.PollInitial, settings.PollMax = 50*time.Millisecond, 200*time.Millisecond
	acts, err := New(Deps{Clients: cm, Supervisor: env.Supervisor.Client, Settings: settings, HTTPClient: iso.Client()})
	require.NoError(t, err)
	s := &suite{env: env, acts: acts, settings: settings, clients: cm, iso: iso}
	for _, c := range env.Clusters {
		s.secrets = append(s.secrets, string(c.Kubeconfig))
	}
	return s
}

// run executes one activity in a fresh test environment and decodes its
// result into out (nil for activities without one).
func (s *suite) run(t *testing.T, out any, fn any, args ...any) error {
	t.Helper()
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(s.acts)
	return s.exec(t, env, out, fn, args...)
}

// exec also checks that neither the inputs nor the result, as Temporal
// would record them in history, contain any of s.secrets.
func (s *suite) exec(t *testing.T, env *testsuite.TestActivityEnvironment, out any, fn any, args ...any) error {
	t.Helper()
	for _, arg := range args {
		s.requireNoSecret(t, arg, "activity input")
	}
	val, err := env.ExecuteActivity(fn, args...)
	if err != nil {
		return err
	}
	if out != nil {
		// Decoding into a used value would keep fields the result omits.
		reflect.ValueOf(out).Elem().SetZero()
		require.NoError(t, val.Get(out))
		s.requireNoSecret(t, out, "activity result")
	}
	return nil
}

func (s *suite) requireNoSecret(t *testing.T, v any, what string) {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	for _, secret := range s.secrets {
		require.NotContains(t, string(raw), secret, "%s carries secret material", what)
	}
}

// must runs an activity that has to succeed.
func (s *suite) must(t *testing.T, out any, fn any, args ...any) {
	t.Helper()
	require.NoError(t, s.run(t, out, fn, args...))
}

// namespace creates a fresh namespace on the supervisor.
func (s *suite) namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	require.NoError(t, s.env.Supervisor.Client.Create(t.Context(), ns))
	return name
}

func (s *suite) create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		require.NoError(t, c.Create(t.Context(), o), "create %T %s", o, o.GetName())
	}
}

func (s *suite) machine(t *testing.T, ns, name string, mutate func(m *v1alpha1.Machine)) contract.MachineRef {
	t.Helper()
	m := &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.MachineSpec{Provider: v1alpha1.MachineProviderType(names.ProviderKubevirt)}}
	if mutate != nil {
		mutate(m)
	}
	s.create(t, s.env.Supervisor.Client, m)
	return contract.MachineRef{Namespace: ns, Name: name}
}

func (s *suite) cluster(name string) client.Client { return s.env.Cluster(name).Client }

// countLive counts the items that are not being deleted.
func countLive[T any](t *testing.T, items []T, deleting func(T) bool) int {
	t.Helper()
	n := 0
	for _, i := range items {
		if !deleting(i) {
			n++
		}
	}
	return n
}

// unreachableKubeconfig points at a port nothing listens on.
func unreachableKubeconfig(t *testing.T) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "unused"}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	b, err := clientcmd.Write(*cfg)
	require.NoError(t, err)
	return b
}

// steppingClock advances by step on every reading.
func steppingClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := now
		now = now.Add(step)
		return t
	}
}

// networkNamespace is a NetworkNamespace with the fields its CRD requires.
func networkNamespace(ns, name string, alloc *v1alpha1.NetworkNamespaceIPAllocation) *v1alpha1.NetworkNamespace {
	return &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.NetworkNamespaceSpec{DatacenterIdentifier: "no-west-az1", SupervisorIdentifier: "sup", IPAllocation: alloc}}
}

// testPlan is the plan of a Machine with a boot and a data disk on the pod
// network, as LoadMachine would make it.
func testPlan(ref contract.MachineRef) contract.MachinePlan {
	return contract.MachinePlan{
		Machine: ref,
		CPU:     contract.CPUPlan{Cores: 1, Sockets: 1, Threads: 1},
		Memory:  "1Gi",
		Disks: []contract.DiskPlan{
			{Name: "root", PVCName: ref.Name, Size: "1Gi", Bus: vmplan.BusVirtio, BootOrder: 1},
			{Name: "data", PVCName: ref.Name + "-data", Size: "1Gi", Bus: vmplan.BusSATA},
		},
		Network: contract.NetworkPlan{PodNetwork: true},
	}
}
