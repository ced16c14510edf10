package kubevirtsim

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/scheme"
)

const (
	wait = 20 * time.Second
	poll = 20 * time.Millisecond
	pool = "10.1.0.0/16"
)

// startSimulator runs a simulator on c until the test ends and checks that
// Run returned nil.
func startSimulator(t *testing.T, c client.Client, opts Options) {
	t.Helper()
	opts.Logger = testr.New(t)
	sim, err := New(c, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done, "Run returns nil when its context ends")
	})
}

func newNamespace(t *testing.T, c client.Client, name string) string {
	t.Helper()
	require.NoError(t, c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	return name
}

func newVM(ns, name string, annotations map[string]string, ifaces ...kubevirtv1.Interface) *kubevirtv1.VirtualMachine {
	always := kubevirtv1.RunStrategyAlways
	// KubeVirt admits an interface only with its network.
	var networks []kubevirtv1.Network
	for _, iface := range ifaces {
		n := kubevirtv1.Network{Name: iface.Name, NetworkSource: kubevirtv1.NetworkSource{Multus: &kubevirtv1.MultusNetwork{NetworkName: iface.Name}}}
		if iface.Name == "default" {
			n.NetworkSource = kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}
		}
		networks = append(networks, n)
	}
	return &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: &always,
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"vitistack.io/source-machine": name}},
				Spec: kubevirtv1.VirtualMachineInstanceSpec{
					Domain: kubevirtv1.DomainSpec{
						Resources: kubevirtv1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
						Devices: kubevirtv1.Devices{
							Interfaces: ifaces,
							Disks:      []kubevirtv1.Disk{{Name: "root", DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}}}},
						},
					},
					Networks: networks,
					Volumes: []kubevirtv1.Volume{{Name: "root", VolumeSource: kubevirtv1.VolumeSource{
						PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: name + "-root"}},
					}}},
				},
			},
		},
	}
}

// waitFor polls the VM and its VMI until cond holds, and returns both.
func waitFor(t *testing.T, c client.Client, vm *kubevirtv1.VirtualMachine, what string, cond func(*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) bool) (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
	t.Helper()
	var gotVM kubevirtv1.VirtualMachine
	var gotVMI *kubevirtv1.VirtualMachineInstance
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		require.NoError(ct, c.Get(context.Background(), client.ObjectKeyFromObject(vm), &gotVM))
		gotVMI = &kubevirtv1.VirtualMachineInstance{}
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(vm), gotVMI); apierrors.IsNotFound(err) {
			gotVMI = nil
		} else {
			require.NoError(ct, err)
		}
		assert.True(ct, cond(&gotVM, gotVMI), "%s: VM status %+v", what, gotVM.Status)
	}, wait, poll, "%s/%s: %s", vm.Namespace, vm.Name, what)
	return &gotVM, gotVMI
}

// bootVM creates a VM with default behaviour and waits until it runs.
func bootVM(t *testing.T, c client.Client, ns, name string) (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
	t.Helper()
	vm := newVM(ns, name, nil)
	require.NoError(t, c.Create(t.Context(), vm))
	_, vmi := waitFor(t, c, vm, "Running", running)
	return vm, vmi
}

func running(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
	return vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusRunning && vmi != nil && len(vmi.Status.Interfaces) > 0
}

func TestSimulator(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 2})
	c := env.Clusters[0].Client
	t.Run("a restarted simulator keeps the addresses in use", func(t *testing.T) {
		t.Parallel()
		testRestartKeepsAddresses(t, env.Clusters[1].VirtController)
	})
	t.Run("Run fails at once without the KubeVirt API", func(t *testing.T) {
		t.Parallel()
		sim, err := New(env.Supervisor.Client, Options{Name: "supervisor"})
		require.NoError(t, err)
		err = sim.Run(t.Context())
		require.ErrorContains(t, err, "kubevirtsim supervisor: the API server does not serve kubevirt.io/v1")
	})
	startSimulator(t, env.Clusters[0].VirtController, Options{Name: env.Clusters[0].Name, AddressPool: pool, BootDelay: 1500 * time.Millisecond, TerminationDelay: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond})
	prefix := netip.MustParsePrefix(pool)

	t.Run("boots a VM to Running with addresses", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, c, "boot")
		fs := corev1.PersistentVolumeFilesystem
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "vm1-root", Namespace: ns},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				VolumeMode:  &fs,
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
			},
		}
		require.NoError(t, c.Create(t.Context(), pvc))
		vm := newVM(ns, "vm1", nil, kubevirtv1.Interface{Name: "default", MacAddress: "02:00:00:00:00:01"}, kubevirtv1.Interface{Name: "vlan20"})
		require.NoError(t, c.Create(t.Context(), vm))

		got, vmi := waitFor(t, c, vm, "Running", running)
		assert.True(t, got.Status.Created)
		assert.True(t, got.Status.Ready)
		assert.Contains(t, got.Finalizers, kubevirtv1.VirtualMachineControllerFinalizer)

		owner := metav1.GetControllerOf(vmi)
		require.NotNil(t, owner)
		assert.Equal(t, got.UID, owner.UID)
		assert.Equal(t, "VirtualMachine", owner.Kind)
		assert.Equal(t, "vm1", vmi.Labels["vitistack.io/source-machine"], "labels come from spec.template.metadata")
		assert.Equal(t, vm.Spec.Template.Spec.Domain.Devices.Interfaces, vmi.Spec.Domain.Devices.Interfaces, "spec comes from the template")

		var phases []kubevirtv1.VirtualMachineInstancePhase
		for _, p := range vmi.Status.PhaseTransitionTimestamps {
			phases = append(phases, p.Phase)
		}
		assert.Equal(t, []kubevirtv1.VirtualMachineInstancePhase{kubevirtv1.Pending, kubevirtv1.Scheduling, kubevirtv1.Scheduled, kubevirtv1.Running}, phases)
		assert.Equal(t, DefaultNodeName, vmi.Status.NodeName)

		require.Len(t, vmi.Status.Interfaces, 2)
		assert.Equal(t, "default", vmi.Status.Interfaces[0].Name)
		assert.Equal(t, "02:00:00:00:00:01", vmi.Status.Interfaces[0].MAC)
		assert.Equal(t, "vlan20", vmi.Status.Interfaces[1].Name)
		assert.NotEmpty(t, vmi.Status.Interfaces[1].MAC)
		var ips []string
		for _, iface := range vmi.Status.Interfaces {
			a, err := netip.ParseAddr(iface.IP)
			require.NoError(t, err)
			assert.True(t, prefix.Contains(a), "%s outside %s", a, prefix)
			assert.Equal(t, []string{iface.IP}, iface.IPs)
			assert.Equal(t, "up", iface.LinkState)
			assert.Equal(t, "domain, guest-agent", iface.InfoSource)
			ips = append(ips, iface.IP)
		}
		assert.NotEqual(t, ips[0], ips[1])

		require.Len(t, vmi.Status.VolumeStatus, 1)
		vs := vmi.Status.VolumeStatus[0]
		assert.Equal(t, "vda", vs.Target)
		require.NotNil(t, vs.PersistentVolumeClaimInfo)
		assert.Equal(t, "vm1-root", vs.PersistentVolumeClaimInfo.ClaimName)
		assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, vs.PersistentVolumeClaimInfo.AccessModes)
		assert.Equal(t, "10Gi", ptrString(vs.PersistentVolumeClaimInfo.Capacity.Storage()))

		// A steady VM is not rewritten on every poll.
		rv := vmi.ResourceVersion
		vmRV := got.ResourceVersion
		time.Sleep(5 * 50 * time.Millisecond)
		var later kubevirtv1.VirtualMachineInstance
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(vmi), &later))
		assert.Equal(t, rv, later.ResourceVersion, "VMI rewritten without a change")
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(vm), got))
		assert.Equal(t, vmRV, got.ResourceVersion, "VM rewritten without a change")
	})

	t.Run("each failure injection", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, c, "failures")
		for _, f := range Failures {
			t.Run(string(f), func(t *testing.T) {
				t.Parallel()
				vm := newVM(ns, strings.ToLower(string(f)), map[string]string{FailureAnnotation: string(f)})
				require.NoError(t, c.Create(t.Context(), vm))
				got, vmi := waitFor(t, c, vm, string(f), func(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
					return vm.Status.PrintableStatus == f.PrintableStatus() && vmi != nil && vmi.Status.Phase == f.phase()
				})
				assert.False(t, got.Status.Ready)
				assert.Empty(t, vmi.Status.Interfaces, "a failed VM gets no address")
				assert.Equal(t, f == CrashLoopBackOff, got.Status.StartFailure != nil)
				if f == Unschedulable {
					i := slices.IndexFunc(vmi.Status.Conditions, func(c kubevirtv1.VirtualMachineInstanceCondition) bool { return c.Type == "PodScheduled" })
					require.GreaterOrEqual(t, i, 0, "PodScheduled condition")
					assert.Equal(t, corev1.ConditionFalse, vmi.Status.Conditions[i].Status)
					assert.Equal(t, "Unschedulable", vmi.Status.Conditions[i].Reason)
				}
			})
		}
	})

	t.Run("recovers from CrashLoopBackOff with the same address", func(t *testing.T) {
		t.Parallel()
		vm, vmi := bootVM(t, c, newNamespace(t, c, "crash"), "vm1")
		ip, uid := vmi.Status.Interfaces[0].IP, vmi.UID

		setAnnotation(t, c, vm, FailureAnnotation, string(CrashLoopBackOff))
		waitFor(t, c, vm, "CrashLoopBackOff", func(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
			return vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusCrashLoopBackOff && vmi != nil && vmi.Status.Phase == kubevirtv1.Failed
		})
		setAnnotation(t, c, vm, FailureAnnotation, "")
		got, vmi := waitFor(t, c, vm, "Running again", running)
		assert.NotEqual(t, uid, vmi.UID, "the failed VMI was replaced")
		assert.Equal(t, ip, vmi.Status.Interfaces[0].IP, "addresses are stable while the VM lives")
		assert.Nil(t, got.Status.StartFailure)
	})

	t.Run("boot delay annotation and never-ready", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, c, "delays")
		slow := newVM(ns, "slow", map[string]string{BootDelayAnnotation: "1h"})
		never := newVM(ns, "never", map[string]string{NeverReadyAnnotation: "true", BootDelayAnnotation: "0s"})
		for _, vm := range []*kubevirtv1.VirtualMachine{slow, never} {
			require.NoError(t, c.Create(t.Context(), vm))
			waitFor(t, c, vm, "booting", func(_ *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
				return vmi != nil && vmi.Status.Phase == kubevirtv1.Scheduling
			})
		}
		// A VM with the default delay, started after the other two and
		// listed after them (lists are ordered by name): once it is
		// Running, they would be too if their annotations were ignored.
		reference := newVM(ns, "zz-reference", nil)
		require.NoError(t, c.Create(t.Context(), reference))
		waitFor(t, c, reference, "Running", running)
		for _, vm := range []*kubevirtv1.VirtualMachine{slow, never} {
			var got kubevirtv1.VirtualMachine
			var vmi kubevirtv1.VirtualMachineInstance
			require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(vm), &got))
			require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(vm), &vmi))
			assert.Equal(t, kubevirtv1.VirtualMachineStatusStarting, got.Status.PrintableStatus, vm.Name)
			assert.False(t, got.Status.Ready, vm.Name)
			assert.Equal(t, kubevirtv1.Scheduling, vmi.Status.Phase, vm.Name)
			assert.Empty(t, vmi.Status.Interfaces, vm.Name)
		}
		setAnnotation(t, c, slow, BootDelayAnnotation, "0s")
		waitFor(t, c, slow, "Running after its boot delay was shortened", running)
	})

	t.Run("an invalid annotation keeps the VM from starting and says why", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, c, "invalid")
		vm := newVM(ns, "vm1", map[string]string{FailureAnnotation: "Exploded"})
		require.NoError(t, c.Create(t.Context(), vm))
		got, vmi := waitFor(t, c, vm, "Failure condition", func(vm *kubevirtv1.VirtualMachine, _ *kubevirtv1.VirtualMachineInstance) bool {
			return slices.ContainsFunc(vm.Status.Conditions, func(c kubevirtv1.VirtualMachineCondition) bool { return c.Type == kubevirtv1.VirtualMachineFailure })
		})
		assert.Nil(t, vmi)
		assert.Equal(t, kubevirtv1.VirtualMachineStatusStopped, got.Status.PrintableStatus)
		assert.Contains(t, got.Status.Conditions[1].Message, FailureAnnotation)
		assert.Contains(t, got.Status.Conditions[1].Message, `"Exploded"`)
	})

	t.Run("Halted stops and Always starts", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, c, "halted")
		vm := newVM(ns, "vm1", nil)
		halted := kubevirtv1.RunStrategyHalted
		vm.Spec.RunStrategy = &halted
		require.NoError(t, c.Create(t.Context(), vm))
		waitFor(t, c, vm, "Stopped", func(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
			return vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusStopped && vmi == nil
		})

		setRunStrategy(t, c, vm, kubevirtv1.RunStrategyAlways)
		waitFor(t, c, vm, "Running", running)
		setRunStrategy(t, c, vm, kubevirtv1.RunStrategyHalted)
		got, _ := waitFor(t, c, vm, "Stopped again", func(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
			return vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusStopped && vmi == nil
		})
		assert.False(t, got.Status.Created)
	})

	t.Run("a deleted VM lingers until its VMI is gone, and its address is not reused", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, c, "deletion")
		vm, vmi := bootVM(t, c, ns, "vm1")
		oldIP := vmi.Status.Interfaces[0].IP

		require.NoError(t, c.Delete(t.Context(), vm))
		var sawTerminating, sawVMIWhileDeleting bool
		for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "VM not gone after %v", wait)
			var cur kubevirtv1.VirtualMachine
			err := c.Get(t.Context(), client.ObjectKeyFromObject(vm), &cur)
			if apierrors.IsNotFound(err) {
				// The VMI must have gone first, and it never comes back.
				err := c.Get(t.Context(), client.ObjectKeyFromObject(vm), &kubevirtv1.VirtualMachineInstance{})
				require.True(t, apierrors.IsNotFound(err), "VM gone before its VMI: %v", err)
				break
			}
			require.NoError(t, err)
			require.NotNil(t, cur.DeletionTimestamp)
			sawTerminating = sawTerminating || cur.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusTerminating
			var cvmi kubevirtv1.VirtualMachineInstance
			if c.Get(t.Context(), client.ObjectKeyFromObject(vm), &cvmi) == nil && cvmi.DeletionTimestamp != nil {
				sawVMIWhileDeleting = true
			}
		}
		assert.True(t, sawTerminating, "the VM showed Terminating while it lingered")
		assert.True(t, sawVMIWhileDeleting, "the VMI was seen terminating while the VM lingered")

		_, vmi = bootVM(t, c, ns, "vm2")
		assert.NotEqual(t, oldIP, vmi.Status.Interfaces[0].IP, "a freed address is not handed out again at once")
	})

	t.Run("a VMI whose VM is gone is collected", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, c, "orphans")
		orphan := kubevirtadmission.MinimalVMI(ns, "ghost")
		orphan.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(
			&kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "ghost", UID: "no-such-uid"}},
			kubevirtv1.VirtualMachineGroupVersionKind)}
		require.NoError(t, c.Create(t.Context(), orphan))
		require.Eventually(t, func() bool {
			return apierrors.IsNotFound(c.Get(t.Context(), client.ObjectKeyFromObject(orphan), &kubevirtv1.VirtualMachineInstance{}))
		}, wait, poll)
	})
}

// testRestartKeepsAddresses runs one simulator, then another on the same
// cluster, which must not hand out the first one's addresses again.
func testRestartKeepsAddresses(t *testing.T, c client.Client) {
	opts := Options{AddressPool: pool, BootDelay: time.Millisecond, PollInterval: 20 * time.Millisecond}
	ns := newNamespace(t, c, "restart")

	sim, err := New(c, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	first, vmi := bootVM(t, c, ns, "first")
	cancel()
	require.NoError(t, <-done)

	startSimulator(t, c, opts)
	_, vmi2 := bootVM(t, c, ns, "second")
	assert.NotEqual(t, vmi.Status.Interfaces[0].IP, vmi2.Status.Interfaces[0].IP, "a restarted simulator knows the addresses in use")
	var again kubevirtv1.VirtualMachineInstance
	require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(first), &again))
	assert.Equal(t, vmi.Status.Interfaces, again.Status.Interfaces)
}

func TestNewRejectsBadOptions(t *testing.T) {
	s, err := scheme.New()
	require.NoError(t, err)
	c := fake.NewClientBuilder().WithScheme(s).Build()
	for name, tt := range map[string]struct {
		opts Options
		want string
	}{
		"pool":          {Options{AddressPool: "10.1.0.0/33"}, "kubevirtsim: Options.AddressPool: address pool \"10.1.0.0/33\""},
		"boot delay":    {Options{BootDelay: -time.Second}, "Options.BootDelay is negative"},
		"poll interval": {Options{PollInterval: -1}, "Options.PollInterval is negative"},
		"termination":   {Options{TerminationDelay: -1}, "Options.TerminationDelay is negative"},
	} {
		_, err := New(c, tt.opts)
		assert.ErrorContains(t, err, tt.want, name)
	}

	_, err = New(fake.NewClientBuilder().WithScheme(runtime.NewScheme()).Build(), Options{})
	assert.ErrorContains(t, err, "scheme does not know kubevirt.io/v1")
	_, err = New(nil, Options{})
	assert.ErrorContains(t, err, "nil client")
}

func TestRunTwiceIsRefused(t *testing.T) {
	s, err := scheme.New()
	require.NoError(t, err)
	sim, err := New(fake.NewClientBuilder().WithScheme(s).Build(), Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	require.Eventually(t, sim.running.Load, wait, poll)
	assert.ErrorContains(t, sim.Run(ctx), "already running")
	cancel()
	require.NoError(t, <-done)
}

func setAnnotation(t *testing.T, c client.Client, vm *kubevirtv1.VirtualMachine, key, value string) {
	t.Helper()
	updateVM(t, c, vm, func(cur *kubevirtv1.VirtualMachine) {
		if value == "" {
			delete(cur.Annotations, key)
			return
		}
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations[key] = value
	})
}

func setRunStrategy(t *testing.T, c client.Client, vm *kubevirtv1.VirtualMachine, s kubevirtv1.VirtualMachineRunStrategy) {
	t.Helper()
	updateVM(t, c, vm, func(cur *kubevirtv1.VirtualMachine) { cur.Spec.RunStrategy = &s })
}

// updateVM applies change with a merge patch, which leaves the simulator's
// concurrent status and finalizer writes alone.
func updateVM(t *testing.T, c client.Client, vm *kubevirtv1.VirtualMachine, change func(*kubevirtv1.VirtualMachine)) {
	t.Helper()
	var cur kubevirtv1.VirtualMachine
	require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(vm), &cur))
	patch := client.MergeFrom(cur.DeepCopy())
	change(&cur)
	require.NoError(t, c.Patch(t.Context(), &cur, patch))
}

func ptrString(q *resource.Quantity) string {
	if q == nil {
		return ""
	}
	return q.String()
}
