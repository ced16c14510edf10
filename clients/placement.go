package clients

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/names"
)

// GetOrCreateClientFromMachine chooses the KubevirtConfig of machine: its
// placement annotation, else the default config, else the only config,
// else the one cluster where its VM already exists. It never writes the
// Machine; the caller persists the returned name.
func (m *KubevirtClientManager) GetOrCreateClientFromMachine(ctx context.Context, machine *v1alpha1.Machine) (client.Client, string, error) {
	if machine == nil {
		return nil, "", errors.New("choosing a KubevirtConfig: Machine is nil")
	}
	ref := machine.Namespace + "/" + machine.Name
	chosen := func(name, rule string) (client.Client, string, error) {
		c, err := m.GetClientForConfig(ctx, name)
		if err != nil {
			var typed *Error
			if errors.As(err, &typed) && typed.Machine == "" {
				withMachine := *typed
				withMachine.Machine = ref
				if withMachine.Reason != "" {
					withMachine.Reason += "; "
				}
				withMachine.Reason += "chosen by " + rule
				return nil, "", &withMachine
			}
			return nil, "", fmt.Errorf("using KubevirtConfig %q, chosen by %s, for Machine %s: %w", name, rule, ref, err)
		}
		return c, name, nil
	}

	if name := machine.Annotations[names.PlacementAnnotation]; name != "" {
		return chosen(name, "annotation "+names.PlacementAnnotation)
	}
	if m.opts.defaultConfig != "" {
		return chosen(m.opts.defaultConfig, "the default config")
	}
	configs, err := m.ListKubevirtConfigs(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("choosing a KubevirtConfig for Machine %s: %w", ref, err)
	}
	switch len(configs) {
	case 0:
		return nil, "", &Error{Kind: ErrConfigNotFound, Machine: ref, Reason: "no KubevirtConfig exists on the supervisor"}
	case 1:
		return chosen(configs[0].Name, "being the only config")
	}
	return m.searchVM(ctx, machine, configs)
}

// searchVM looks for the Machine's VM on every cluster at once. A cluster
// that cannot be searched is reported as such, never taken as "absent".
func (m *KubevirtClientManager) searchVM(ctx context.Context, machine *v1alpha1.Machine, configs []v1alpha1.KubevirtConfig) (client.Client, string, error) {
	ref := machine.Namespace + "/" + machine.Name
	type hit struct {
		name   string
		client client.Client
	}
	var (
		mu         sync.Mutex
		found      []hit
		unsearched = map[string]error{}
		wg         sync.WaitGroup
	)
	for _, kvc := range configs {
		wg.Go(func() {
			c, err := m.GetClientForConfig(ctx, kvc.Name)
			if err == nil {
				err = m.vmExists(ctx, c, machine)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				found = append(found, hit{kvc.Name, c})
			case !errors.Is(err, errVMAbsent):
				unsearched[kvc.Name] = ClassifyRemoteError(kvc.Name, err)
			}
		})
	}
	wg.Wait()

	slices.SortFunc(found, func(a, b hit) int { return strings.Compare(a.name, b.name) })
	switch {
	case len(found) == 1:
		return found[0].client, found[0].name, nil
	case len(found) > 1:
		foundNames := make([]string, len(found))
		for i, h := range found {
			foundNames[i] = h.name
		}
		return nil, "", &Error{Kind: ErrAmbiguousPlacement, Machine: ref,
			Reason: fmt.Sprintf("VM %s exists on the clusters of KubevirtConfigs %s; set annotation %s to the right one",
				ref, strings.Join(foundNames, ", "), names.PlacementAnnotation)}
	case len(unsearched) > 0:
		failed := make([]string, 0, len(unsearched))
		for name := range unsearched {
			failed = append(failed, name)
		}
		slices.Sort(failed)
		details := make([]string, len(failed))
		for i, name := range failed {
			details[i] = unsearched[name].Error()
		}
		return nil, "", &Error{Kind: searchFailureKind(failed, unsearched), Machine: ref,
			Reason: fmt.Sprintf("VM %s not found on %d of %d clusters, and the clusters of KubevirtConfigs %s could not be searched: %s",
				ref, len(configs)-len(failed), len(configs), strings.Join(failed, ", "), strings.Join(details, "; "))}
	default:
		return nil, "", &Error{Kind: ErrAmbiguousPlacement, Machine: ref,
			Reason: fmt.Sprintf("%d KubevirtConfigs exist and VM %s is on none of them; set annotation %s on the Machine or DEFAULT_KUBEVIRT_CONFIG",
				len(configs), ref, names.PlacementAnnotation)}
	}
}

// searchFailureKind is the Kind of a failed search: ErrClusterUnreachable
// (worth retrying) while any cluster could not be reached, else the Kind of
// the final errors (e.g. every unsearched cluster rejected our credentials),
// so that a Machine nobody can place without a fix is not retried for long.
// failed lists the unsearched configs in name order, which makes the choice
// among different final Kinds stable.
func searchFailureKind(failed []string, unsearched map[string]error) error {
	var kind error
	for _, name := range failed {
		var typed *Error
		if !errors.As(unsearched[name], &typed) || typed.Kind == ErrClusterUnreachable {
			return ErrClusterUnreachable
		}
		if kind == nil {
			kind = typed.Kind
		}
	}
	return kind
}

// errVMAbsent says a cluster was searched and does not hold the VM.
var errVMAbsent = errors.New("VM absent")

// vmExists gets the VM's metadata only. A cluster without the KubeVirt API
// cannot hold the VM, so it counts as searched.
func (m *KubevirtClientManager) vmExists(ctx context.Context, c client.Client, machine *v1alpha1.Machine) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.requestTimeout)
	defer cancel()
	vm := &metav1.PartialObjectMetadata{}
	vm.SetGroupVersionKind(kubevirtv1.VirtualMachineGroupVersionKind)
	err := c.Get(ctx, client.ObjectKey{Namespace: machine.Namespace, Name: machine.Name}, vm)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return errVMAbsent
	}
	return err
}
