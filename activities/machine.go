package activities

import (
	"context"
	"fmt"
	"sort"

	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/vmplan"
)

// LoadMachine reads a Machine with its MachineClass and NetworkNamespace and
// validates everything the Ensure activities will need, so that an invalid
// spec fails here, before anything exists anywhere.
func (a *Activities) LoadMachine(ctx context.Context, ref contract.MachineRef) (contract.MachinePlan, error) {
	machine, err := a.getMachine(ctx, ref)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	if !names.HandlesProvider(string(machine.Spec.Provider)) {
		return contract.MachinePlan{}, newAppError(contract.ErrTypeUnsupportedProvider, true, nil,
			"Machine %s/%s: spec.provider: %q is not handled by machineflow (only \"\" or %q)",
			ref.Namespace, ref.Name, machine.Spec.Provider, names.ProviderKubevirt)
	}
	class, err := a.machineClass(ctx, ref, machine.Spec.MachineClass)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	netns, err := a.networkNamespace(ctx, machine)
	if err != nil {
		return contract.MachinePlan{}, err
	}
	plan, err := vmplan.Plan(machine, class, netns)
	if err != nil {
		return contract.MachinePlan{}, fromPlan(err)
	}
	if err := a.checkCloudInit(ctx, machine); err != nil {
		return contract.MachinePlan{}, err
	}
	return plan, nil
}

// getMachine reads a Machine from the supervisor; a missing one is final.
func (a *Activities) getMachine(ctx context.Context, ref contract.MachineRef) (*v1alpha1.Machine, error) {
	machine := &v1alpha1.Machine{}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, machine)
	if apierrors.IsNotFound(err) {
		return nil, machineNotFound(ref)
	}
	if err != nil {
		return nil, classify(err, fmt.Sprintf("get Machine %s/%s", ref.Namespace, ref.Name))
	}
	return machine, nil
}

func (a *Activities) machineClass(ctx context.Context, ref contract.MachineRef, name string) (*v1alpha1.MachineClass, error) {
	if name == "" {
		return nil, nil
	}
	class := &v1alpha1.MachineClass{}
	err := a.supervisor.Get(ctx, client.ObjectKey{Name: name}, class)
	if apierrors.IsNotFound(err) {
		return nil, invalidSpec(ref, "spec.machineClass", "MachineClass %q not found", name)
	}
	if err != nil {
		return nil, classify(err, "get MachineClass "+name)
	}
	return class, nil
}

// networkNamespace finds the Machine's NetworkNamespace: the named one, which
// must exist, else (legacy) the one named after the Machine, else the first
// in the namespace by name, else none (pod network).
func (a *Activities) networkNamespace(ctx context.Context, machine *v1alpha1.Machine) (*v1alpha1.NetworkNamespace, error) {
	ref := vmplan.RefOf(machine)
	nn := &v1alpha1.NetworkNamespace{}
	if name := machine.Spec.Network.NetworkNamespaceName; name != "" {
		err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: machine.Namespace, Name: name}, nn)
		if apierrors.IsNotFound(err) {
			return nil, invalidSpec(ref, "spec.network.networkNamespaceName", "NetworkNamespace %q not found in namespace %q", name, machine.Namespace)
		}
		if err != nil {
			return nil, classify(err, fmt.Sprintf("get NetworkNamespace %s/%s", machine.Namespace, name))
		}
		return nn, nil
	}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: machine.Namespace, Name: machine.Name}, nn)
	if err == nil {
		return nn, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, classify(err, fmt.Sprintf("get NetworkNamespace %s/%s", machine.Namespace, machine.Name))
	}
	list := &v1alpha1.NetworkNamespaceList{}
	if err := a.supervisor.List(ctx, list, client.InNamespace(machine.Namespace)); err != nil {
		return nil, classify(err, "list NetworkNamespaces in "+machine.Namespace)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return &list.Items[0], nil
}

// checkCloudInit refuses now what EnsureVirtualMachine would refuse later
// of the Machine's cloud-init: a referenced Secret or ConfigMap (or key)
// that does not exist yet, or payloads that no Secret can carry. The
// network data of a static allocation is left out: it is rendered once
// EnsureNetwork has made the NetworkConfiguration.
func (a *Activities) checkCloudInit(ctx context.Context, machine *v1alpha1.Machine) error {
	data, err := a.resolveCloudInit(ctx, machine, contract.NetworkPlan{})
	if err != nil || data == nil {
		return err
	}
	return fromPlan(vmplan.ValidateCloudInitSize(vmplan.RefOf(machine), *data))
}

// readCloudInitRef returns the referenced payload. Errors name the object
// and key, never the content.
func (a *Activities) readCloudInitRef(ctx context.Context, namespace string, r vmplan.CloudInitRef) (string, error) {
	kind := "ConfigMap"
	var obj client.Object = &corev1.ConfigMap{}
	if r.Secret {
		kind = "Secret"
		obj = &corev1.Secret{}
	}
	err := a.supervisor.Get(ctx, client.ObjectKey{Namespace: namespace, Name: r.Name}, obj)
	if apierrors.IsNotFound(err) {
		return "", waiting("%s: %s %s/%s does not exist yet", r.Field, kind, namespace, r.Name)
	}
	if err != nil {
		return "", classify(err, fmt.Sprintf("get %s %s/%s", kind, namespace, r.Name))
	}
	var value string
	var ok bool
	switch o := obj.(type) {
	case *corev1.Secret:
		var b []byte
		b, ok = o.Data[r.Key]
		value = string(b)
	case *corev1.ConfigMap:
		value, ok = o.Data[r.Key]
	}
	if !ok {
		return "", waiting("%s: %s %s/%s has no key %q yet", r.Field, kind, namespace, r.Name, r.Key)
	}
	return value, nil
}
