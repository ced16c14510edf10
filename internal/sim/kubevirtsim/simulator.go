package kubevirtsim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Defaults for Options.
const (
	DefaultBootDelay        = time.Second
	DefaultTerminationDelay = 300 * time.Millisecond
	DefaultPollInterval     = 200 * time.Millisecond
	DefaultAddressPool      = "10.100.0.0/16"
	DefaultNodeName         = "node01"
)

// Options configures a Simulator. Zero values take the defaults above.
type Options struct {
	// Name identifies the simulated cluster in logs.
	Name string
	// AddressPool is the CIDR interface addresses come from. Give every
	// cluster its own (e.g. 10.<n>.0.0/16) so addresses are unique across
	// clusters too.
	AddressPool string
	// BootDelay is how long a VMI takes from creation to Running; the
	// BootDelayAnnotation overrides it per VM.
	BootDelay time.Duration
	// TerminationDelay is how long a deleted VMI lingers before it is gone
	// (the guest shutting down).
	TerminationDelay time.Duration
	// PollInterval is how often the API server is listed.
	PollInterval time.Duration
	// NodeName is reported as the VMI's node once it is scheduled.
	NodeName string
	// Logger defaults to the logger in Run's context.
	Logger logr.Logger
}

// Simulator plays virt-controller and virt-handler for one API server.
type Simulator struct {
	c    client.Client
	opts Options
	log  logr.Logger
	pool *addressPool

	running atomic.Bool
	seeded  bool
	// booting and terminating record when the simulator first saw a VMI,
	// and first saw it deleted: creationTimestamp has one-second resolution,
	// too coarse for sub-second boot delays.
	booting     map[types.UID]time.Time
	terminating map[types.UID]time.Time
}

// New returns a Simulator working through c, whose scheme must know
// kubevirt.io/v1 (internal/scheme does).
func New(c client.Client, opts Options) (*Simulator, error) {
	if c == nil {
		return nil, errors.New("kubevirtsim: nil client")
	}
	if !c.Scheme().Recognizes(kubevirtv1.VirtualMachineGroupVersionKind) {
		return nil, errors.New("kubevirtsim: the client's scheme does not know kubevirt.io/v1 VirtualMachine (build it with internal/scheme)")
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"BootDelay", opts.BootDelay}, {"TerminationDelay", opts.TerminationDelay}, {"PollInterval", opts.PollInterval}} {
		if d.value < 0 {
			return nil, fmt.Errorf("kubevirtsim: Options.%s is negative (%v)", d.name, d.value)
		}
	}
	opts.BootDelay = cmp.Or(opts.BootDelay, DefaultBootDelay)
	opts.TerminationDelay = cmp.Or(opts.TerminationDelay, DefaultTerminationDelay)
	opts.PollInterval = cmp.Or(opts.PollInterval, DefaultPollInterval)
	opts.AddressPool = cmp.Or(opts.AddressPool, DefaultAddressPool)
	opts.NodeName = cmp.Or(opts.NodeName, DefaultNodeName)
	pool, err := newAddressPool(opts.AddressPool)
	if err != nil {
		return nil, fmt.Errorf("kubevirtsim: Options.AddressPool: %w", err)
	}
	return &Simulator{
		c:           c,
		opts:        opts,
		pool:        pool,
		booting:     map[types.UID]time.Time{},
		terminating: map[types.UID]time.Time{},
	}, nil
}

// Run polls and reconciles until ctx is done, then returns nil. It returns an
// error at once if the API server does not serve the KubeVirt API, which no
// retry would fix; other API errors are logged and retried on the next poll.
func (s *Simulator) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("kubevirtsim: Run is already running")
	}
	defer s.running.Store(false)
	s.log = s.opts.Logger
	if s.log.GetSink() == nil {
		s.log = log.FromContext(ctx)
	}
	s.log = s.log.WithName("kubevirtsim").WithValues("cluster", s.opts.Name)

	ticker := time.NewTicker(s.opts.PollInterval)
	defer ticker.Stop()
	for {
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			if meta.IsNoMatchError(err) || runtime.IsNotRegisteredError(err) {
				return fmt.Errorf("kubevirtsim %s: the API server does not serve kubevirt.io/v1: %w", s.opts.Name, err)
			}
			s.log.Error(err, "poll failed, retrying")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// tick runs one poll. Errors about single objects are logged so that one bad
// VM does not stall the others; only a failed List is returned.
func (s *Simulator) tick(ctx context.Context) error {
	// VMIs are listed before VMs: a VMI's VM then shows up in the VM list
	// unless it is really gone, so an orphan is never mistaken.
	var vmis kubevirtv1.VirtualMachineInstanceList
	if err := s.c.List(ctx, &vmis); err != nil {
		return fmt.Errorf("listing VirtualMachineInstances: %w", err)
	}
	var vms kubevirtv1.VirtualMachineList
	if err := s.c.List(ctx, &vms); err != nil {
		return fmt.Errorf("listing VirtualMachines: %w", err)
	}
	now := time.Now()
	if !s.seeded {
		s.seedAddresses(vmis.Items)
		s.seeded = true
	}

	vmByKey := make(map[types.NamespacedName]*kubevirtv1.VirtualMachine, len(vms.Items))
	live := make(map[string]bool, len(vms.Items))
	for i := range vms.Items {
		vm := &vms.Items[i]
		vmByKey[client.ObjectKeyFromObject(vm)] = vm
		live[string(vm.UID)] = true
	}
	vmiByKey := make(map[types.NamespacedName]*kubevirtv1.VirtualMachineInstance, len(vmis.Items))
	seen := make(map[types.UID]bool, len(vmis.Items))
	for i := range vmis.Items {
		vmi := &vmis.Items[i]
		seen[vmi.UID] = true
		owner := metav1.GetControllerOf(vmi)
		if owner == nil || owner.Kind != kubevirtv1.VirtualMachineGroupVersionKind.Kind {
			continue // standalone VMIs are not simulated (see doc.go)
		}
		vm := vmByKey[client.ObjectKeyFromObject(vmi)]
		if vm == nil || vm.UID != owner.UID {
			s.collectOrphan(ctx, vmi, now)
			continue
		}
		if vmi.DeletionTimestamp != nil {
			s.terminate(ctx, vmi, now)
		}
		vmiByKey[client.ObjectKeyFromObject(vmi)] = vmi
	}

	for i := range vms.Items {
		vm := &vms.Items[i]
		err := s.syncVM(ctx, vm, vmiByKey[client.ObjectKeyFromObject(vm)], now)
		switch {
		case apierrors.IsConflict(err):
			// Someone else wrote the VM or VMI since our List; normal
			// with concurrent writers, and redone on the next poll.
			s.log.V(1).Info("conflict, retrying on the next poll", "vm", klog.KObj(vm), "error", err.Error())
		case err != nil:
			s.log.Error(err, "syncing VirtualMachine", "vm", klog.KObj(vm))
		}
	}

	s.pool.releaseExcept(live)
	forgetExcept(s.booting, seen)
	forgetExcept(s.terminating, seen)
	return nil
}

func forgetExcept(m map[types.UID]time.Time, keep map[types.UID]bool) {
	for uid := range m {
		if !keep[uid] {
			delete(m, uid)
		}
	}
}

// seedAddresses gives VMs the addresses their VMIs already report, so a
// restarted simulator keeps them stable.
func (s *Simulator) seedAddresses(vmis []kubevirtv1.VirtualMachineInstance) {
	for _, vmi := range vmis {
		owner := metav1.GetControllerOf(&vmi)
		if owner == nil {
			continue
		}
		var addrs []netip.Addr
		for _, iface := range vmi.Status.Interfaces {
			if a, err := netip.ParseAddr(iface.IP); err == nil {
				addrs = append(addrs, a)
			}
		}
		s.pool.reserve(string(owner.UID), addrs)
	}
}

// collectOrphan deletes a VMI whose VM is gone, standing in for the garbage
// collector that envtest does not run.
func (s *Simulator) collectOrphan(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, now time.Time) {
	if vmi.DeletionTimestamp == nil {
		if err := s.c.Delete(ctx, vmi); client.IgnoreNotFound(err) != nil {
			s.log.Error(err, "deleting orphaned VirtualMachineInstance", "vmi", klog.KObj(vmi))
		}
		return
	}
	s.terminate(ctx, vmi, now)
}

// terminate lets a deleted VMI go once TerminationDelay has passed.
func (s *Simulator) terminate(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, now time.Time) {
	began, ok := s.terminating[vmi.UID]
	if !ok {
		s.terminating[vmi.UID] = now
		return
	}
	if now.Sub(began) < s.opts.TerminationDelay {
		return
	}
	if err := s.removeFinalizer(ctx, vmi, kubevirtv1.VirtualMachineInstanceFinalizer); err != nil {
		s.log.Error(err, "releasing terminated VirtualMachineInstance", "vmi", klog.KObj(vmi))
	}
}

func (s *Simulator) removeFinalizer(ctx context.Context, obj client.Object, finalizer string) error {
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(obj, finalizer)
	if err := s.c.Patch(ctx, obj, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing finalizer %s: %w", finalizer, err)
	}
	return nil
}

// syncVM does what virt-controller does for one VM: finalizer, start, stop,
// restart, deletion, and the VM's status. vmi is the VM's VMI, or nil.
func (s *Simulator) syncVM(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, now time.Time) error {
	if vm.DeletionTimestamp != nil {
		return s.deleteVM(ctx, vm, vmi, now)
	}
	if !controllerutil.ContainsFinalizer(vm, kubevirtv1.VirtualMachineControllerFinalizer) {
		patch := client.MergeFromWithOptions(vm.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(vm, kubevirtv1.VirtualMachineControllerFinalizer)
		if err := s.c.Patch(ctx, vm, patch); err != nil {
			return fmt.Errorf("adding finalizer: %w", err)
		}
	}

	b, invalid := parseBehaviour(vm.Annotations, s.opts.BootDelay)
	if invalid == nil && vm.Spec.Template == nil {
		invalid = errors.New("spec.template is missing")
	}
	plan := runPlanFor(vm.Spec)
	var err error
	switch {
	case vmi != nil && vmi.DeletionTimestamp != nil:
		// Terminating: the VM waits for it to go before anything else.
	case vmi != nil && plan.want == wantStopped:
		err = s.deleteVMI(ctx, vmi)
	case vmi != nil && vmi.Status.Phase == kubevirtv1.Failed && b.failure != CrashLoopBackOff && plan.restartFailed:
		err = s.deleteVMI(ctx, vmi) // recreated once it is gone
	case vmi != nil && invalid == nil:
		err = s.advanceVMI(ctx, vm, vmi, b, now)
	case vmi == nil && plan.want == wantRunning && invalid == nil:
		vmi, err = s.createVMI(ctx, vm, now)
	}
	if err != nil {
		return err
	}
	if invalid != nil {
		s.log.V(1).Info("not starting VirtualMachine", "vm", klog.KObj(vm), "reason", invalid.Error())
	}
	return s.writeVMStatus(ctx, vm, vmStatus(vm, vmi, b, invalid, plan, now))
}

func (s *Simulator) deleteVM(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, now time.Time) error {
	if vmi == nil {
		return s.removeFinalizer(ctx, vm, kubevirtv1.VirtualMachineControllerFinalizer)
	}
	if vmi.DeletionTimestamp == nil {
		if err := s.deleteVMI(ctx, vmi); err != nil {
			return err
		}
	}
	return s.writeVMStatus(ctx, vm, vmStatus(vm, vmi, behaviour{}, nil, runPlan{}, now))
}

func (s *Simulator) deleteVMI(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) error {
	if err := s.c.Delete(ctx, vmi); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting VirtualMachineInstance: %w", err)
	}
	vmi.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	return nil
}

func (s *Simulator) createVMI(ctx context.Context, vm *kubevirtv1.VirtualMachine, now time.Time) (*kubevirtv1.VirtualMachineInstance, error) {
	tmpl := vm.Spec.Template
	vmi := &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{
			Name:            vm.Name,
			Namespace:       vm.Namespace,
			Labels:          tmpl.ObjectMeta.Labels,
			Annotations:     tmpl.ObjectMeta.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(vm, kubevirtv1.VirtualMachineGroupVersionKind)},
			Finalizers:      []string{kubevirtv1.VirtualMachineInstanceFinalizer},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if err := s.c.Create(ctx, vmi); err != nil {
		// AlreadyExists means our List was stale: the next poll sees it.
		return nil, client.IgnoreAlreadyExists(fmt.Errorf("creating VirtualMachineInstance: %w", err))
	}
	s.booting[vmi.UID] = now
	vmi.Status = kubevirtv1.VirtualMachineInstanceStatus{
		Phase:                     kubevirtv1.Pending,
		PhaseTransitionTimestamps: []kubevirtv1.VirtualMachineInstancePhaseTransitionTimestamp{{Phase: kubevirtv1.Pending, PhaseTransitionTimestamp: metav1.NewTime(now)}},
	}
	// A VMI has no status subresource: virt-controller updates it whole.
	if err := s.c.Update(ctx, vmi); err != nil {
		return vmi, fmt.Errorf("VirtualMachineInstance status: %w", err)
	}
	s.log.V(1).Info("created VirtualMachineInstance", "vm", klog.KObj(vm))
	return vmi, nil
}

// advanceVMI moves a VMI along its boot, or into the injected failure, and
// writes the status if it changed.
func (s *Simulator) advanceVMI(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, b behaviour, now time.Time) error {
	began, ok := s.booting[vmi.UID]
	if !ok {
		began = now
		s.booting[vmi.UID] = now
	}
	phase := bootPhase(now.Sub(began), b)
	var addrs []netip.Addr
	if phase == kubevirtv1.Running {
		var err error
		if addrs, err = s.pool.addresses(string(vm.UID), len(statusInterfaces(vmi.Spec))); err != nil {
			// Held in Scheduled, as a VM whose network never comes up.
			s.log.Error(err, "no address for VirtualMachineInstance", "vmi", klog.KObj(vmi))
			phase = kubevirtv1.Scheduled
		}
	}
	var pvcs map[string]*corev1.PersistentVolumeClaim
	if phase == kubevirtv1.Running && vmi.Status.Phase != kubevirtv1.Running {
		pvcs = s.claims(ctx, vmi)
	}
	want := vmiStatus(vmi, b.failure, phase, s.opts.NodeName, addrs, pvcs, now)
	if equality.Semantic.DeepEqual(vmi.Status, want) {
		return nil
	}
	vmi.Status = want
	if err := s.c.Update(ctx, vmi); err != nil {
		return fmt.Errorf("VirtualMachineInstance status: %w", err)
	}
	return nil
}

func (s *Simulator) writeVMStatus(ctx context.Context, vm *kubevirtv1.VirtualMachine, want kubevirtv1.VirtualMachineStatus) error {
	if equality.Semantic.DeepEqual(vm.Status, want) {
		return nil
	}
	vm.Status = want
	if err := s.c.Status().Update(ctx, vm); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("VirtualMachine status: %w", err)
	}
	return nil
}
