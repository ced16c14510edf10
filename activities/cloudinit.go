package activities

import (
	"context"
	"fmt"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// resolveCloudInit reads the Machine's NoCloud payload on the supervisor:
// for each of user and network data the first of inline, base64, Secret and
// ConfigMap; network data for a static NetworkNamespace is otherwise
// synthesised from the NetworkConfiguration's allocation. A referenced
// Secret or ConfigMap that does not exist yet is a retryable wait, as the
// operator requeued (another controller often writes them later). The
// result stays inside the activity: it goes into the VM's cloud-init
// Secret on the KubeVirt cluster and nowhere else.
func (a *Activities) resolveCloudInit(ctx context.Context, machine *v1alpha1.Machine, network contract.NetworkPlan) (*vmplan.CloudInitData, error) {
	ci := machine.Spec.CloudInit
	if ci == nil {
		return nil, nil
	}
	ref := vmplan.RefOf(machine)
	if err := vmplan.ValidateCloudInit(ref, ci); err != nil {
		return nil, fromPlan(err)
	}
	srcs := vmplan.CloudInitSources(ci)
	user, err := a.readCloudInitSource(ctx, ref, srcs[0])
	if err != nil {
		return nil, err
	}
	networkData, err := a.readCloudInitSource(ctx, ref, srcs[1])
	if err != nil {
		return nil, err
	}
	data := &vmplan.CloudInitData{UserData: vmplan.NoopUserData, UserDataField: srcs[0].Field(), NetworkDataField: srcs[1].Field()}
	if user != nil {
		data.UserData = *user
	}
	switch {
	case networkData != nil:
		data.NetworkData = *networkData
	case network.Static:
		if data.NetworkData, err = a.staticNetworkData(ctx, machine, network.NetworkNamespace); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// readCloudInitSource returns a payload, or nil when the source is empty.
func (a *Activities) readCloudInitSource(ctx context.Context, ref contract.MachineRef, src vmplan.CloudInitSource) (*string, error) {
	if v, err := src.InlinePayload(ref); err != nil || v != nil {
		return v, fromPlan(err)
	}
	if src.Ref == nil {
		return nil, nil
	}
	v, err := a.readCloudInitRef(ctx, ref.Namespace, *src.Ref)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// staticNetworkData renders network-config v1 from the IPs that the
// static-ip-operator allocated into the NetworkConfiguration's status.
// Until it has, this is a retryable wait.
func (a *Activities) staticNetworkData(ctx context.Context, machine *v1alpha1.Machine, netnsName string) (string, error) {
	netns := &v1alpha1.NetworkNamespace{}
	if err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: machine.Namespace, Name: netnsName}, netns); err != nil {
		return "", classify(err, fmt.Sprintf("get NetworkNamespace %s/%s", machine.Namespace, netnsName))
	}
	nc := &v1alpha1.NetworkConfiguration{}
	err := a.supervisor.Get(ctx, client.ObjectKeyFromObject(machine), nc)
	if apierrors.IsNotFound(err) {
		return "", waiting("NetworkConfiguration %s/%s does not exist yet", machine.Namespace, machine.Name)
	}
	if err != nil {
		return "", classify(err, fmt.Sprintf("get NetworkConfiguration %s/%s", machine.Namespace, machine.Name))
	}
	data, err := vmplan.RenderNetworkConfigV1(netns, nc)
	return data, fromPlan(err)
}
