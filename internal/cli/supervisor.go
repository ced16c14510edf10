package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
)

// supervisorTimeout bounds reading a Machine from the supervisor.
const supervisorTimeout = 10 * time.Second

// errNoKubeconfig says the supervisor is not configured; status then
// shows the workflow part only.
var errNoKubeconfig = errors.New("no kubeconfig for the supervisor (--kubeconfig, $KUBECONFIG or ~/.kube/config)")

// MachineStatus is the part of a Machine's status that status shows.
type MachineStatus struct {
	Phase          string                      `json:"phase,omitempty"`
	State          string                      `json:"state,omitempty"`
	KubevirtConfig string                      `json:"kubevirtConfig,omitempty"`
	IPAddresses    []string                    `json:"ipAddresses,omitempty"`
	IPv6Addresses  []string                    `json:"ipv6Addresses,omitempty"`
	FailureReason  string                      `json:"failureReason,omitempty"`
	FailureMessage string                      `json:"failureMessage,omitempty"`
	Conditions     []v1alpha1.MachineCondition `json:"conditions,omitempty"`
}

// supervisorClient builds a client for the supervisor from --kubeconfig,
// else the loading rules kubectl uses ($KUBECONFIG, ~/.kube/config).
func (a *app) supervisorClient() (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = a.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errNoKubeconfig
	}
	if err != nil {
		return nil, fmt.Errorf("supervisor kubeconfig: %w", err)
	}
	s, err := scheme.New()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("supervisor client: %w", err)
	}
	return c, nil
}

// machineStatus reads a Machine's status; found is false when the Machine
// does not exist.
func (a *app) machineStatus(ctx context.Context, ref contract.MachineRef) (st MachineStatus, found bool, err error) {
	c, err := a.supervisorClient()
	if err != nil {
		return st, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, supervisorTimeout)
	defer cancel()
	m := &v1alpha1.Machine{}
	err = c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, m)
	if apierrors.IsNotFound(err) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("get Machine %s/%s from the supervisor: %w", ref.Namespace, ref.Name, err)
	}
	st = MachineStatus{
		Phase:          m.Status.Phase,
		State:          m.Status.State,
		KubevirtConfig: m.Annotations[names.PlacementAnnotation],
		IPAddresses:    m.Status.IPAddresses,
		IPv6Addresses:  m.Status.IPv6Addresses,
		Conditions:     m.Status.Conditions,
	}
	if m.Status.FailureReason != nil {
		st.FailureReason = *m.Status.FailureReason
	}
	if m.Status.FailureMessage != nil {
		st.FailureMessage = *m.Status.FailureMessage
	}
	return st, true, nil
}
