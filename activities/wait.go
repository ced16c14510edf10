package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/sdk/activity"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/vmstatus"
)

// WaitProgress is the heartbeat of WaitForVirtualMachine: what it last saw,
// so a retry after a worker restart continues instead of starting over.
type WaitProgress struct {
	FirstSeen time.Time `json:"firstSeen"`
	Phase     string    `json:"phase"`
	State     string    `json:"state"`
	Polls     int       `json:"polls"`
}

// WaitForVirtualMachine polls the VM and its VMI with backoff until the VMI
// runs with an address, or the VM reaches a state it cannot boot from. It
// heartbeats every poll; the boot deadline is the caller's ScheduleToClose,
// so a slow but healthy boot is never given up on here.
func (a *Activities) WaitForVirtualMachine(ctx context.Context, rm contract.RemoteMachine) (contract.VMObservation, error) {
	logger := activity.GetLogger(ctx)
	progress := WaitProgress{}
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &progress); err != nil {
			logger.Warn("ignoring unreadable heartbeat details", "error", err)
			progress = WaitProgress{}
		}
	}
	if progress.FirstSeen.IsZero() {
		progress.FirstSeen = a.now()
	} else {
		logger.Info("resuming wait", "since", progress.FirstSeen, "phase", progress.Phase, "state", progress.State, "polls", progress.Polls)
	}

	delay := a.settings.PollInitial
	for {
		// The client is asked for on every poll: a wait outlives a
		// kubeconfig rotation, and once the ClientManager has picked up
		// the new Secret the old credentials may be revoked. The cached
		// lookup costs nothing.
		c, err := a.remote(ctx, rm.KubevirtConfig)
		if err != nil {
			return contract.VMObservation{}, err
		}
		obs, done, err := a.pollVM(ctx, c, rm)
		if err != nil {
			return contract.VMObservation{}, err
		}
		progress.Polls++
		if obs.Phase != progress.Phase || obs.State != progress.State {
			logger.Info("VM state", "machine", objectName(rm.Machine.Namespace, rm.Machine.Name),
				"phase", obs.Phase, "state", obs.State, "waited", a.now().Sub(progress.FirstSeen).Round(time.Millisecond))
			progress.Phase, progress.State = obs.Phase, obs.State
			// A state change restarts the backoff: things are moving.
			delay = a.settings.PollInitial
		}
		activity.RecordHeartbeat(ctx, progress)
		if done {
			return obs, nil
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return contract.VMObservation{}, ctx.Err()
		case <-timer.C:
		}
		delay = min(delay*2, a.settings.PollMax)
	}
}

// pollVM reads the VM and VMI once: done when the VMI runs with an address,
// a final error when the VM cannot boot.
func (a *Activities) pollVM(ctx context.Context, c client.Client, rm contract.RemoteMachine) (contract.VMObservation, bool, error) {
	key := client.ObjectKey{Namespace: rm.Machine.Namespace, Name: rm.Machine.Name}
	where := fmt.Sprintf("%s/%s on %s", key.Namespace, key.Name, rm.KubevirtConfig)
	vm := &kubevirtv1.VirtualMachine{}
	err := c.Get(ctx, key, vm)
	if apierrors.IsNotFound(err) {
		return contract.VMObservation{}, false, bootFailed(rm.Machine, "VMNotFound", "the VirtualMachine disappeared from "+rm.KubevirtConfig)
	}
	if err != nil {
		return contract.VMObservation{}, false, classify(err, "get VirtualMachine "+where)
	}
	var vmi *kubevirtv1.VirtualMachineInstance
	instance := &kubevirtv1.VirtualMachineInstance{}
	switch err := c.Get(ctx, key, instance); {
	case err == nil:
		vmi = instance
	case !apierrors.IsNotFound(err):
		return contract.VMObservation{}, false, classify(err, "get VirtualMachineInstance "+where)
	}
	if reason, message, failed := vmstatus.BootFailure(vm, vmi); failed {
		return contract.VMObservation{}, false, bootFailed(rm.Machine, reason, message)
	}
	obs, err := a.observation(ctx, vm, vmi, rm.Machine)
	if err != nil {
		return contract.VMObservation{}, false, err
	}
	done := vmi != nil && vmi.Status.Phase == kubevirtv1.Running && obs.HasAddress()
	return obs, done, nil
}

// observation maps VM and VMI to an observation, reading the Machine's
// NetworkConfiguration when IP_SOURCE=networkconfiguration. An unreadable
// NetworkConfiguration falls back to the VMI's addresses, as the operator did.
func (a *Activities) observation(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, m contract.MachineRef) (contract.VMObservation, error) {
	var ncStatus []v1alpha1.NetworkConfigurationInterface
	if a.settings.IPSource == vmstatus.IPSourceNetworkConfiguration && vmi != nil {
		nc := &v1alpha1.NetworkConfiguration{}
		err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.Name}, nc)
		switch {
		case err == nil:
			ncStatus = nc.Status.NetworkInterfaces
		case errors.Is(err, context.Canceled):
			return contract.VMObservation{}, err
		default:
			activity.GetLogger(ctx).Warn("NetworkConfiguration unreadable, using VMI addresses", "machine", objectName(m.Namespace, m.Name), "error", err)
		}
	}
	return vmstatus.Observe(vm, vmi, a.settings.IPSource, ncStatus), nil
}
