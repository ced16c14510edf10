package activities

import (
	"context"
	"fmt"
	"sort"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
)

// KubevirtConfig status values written by RecordClusterHealth.
const (
	clusterPhaseReady    = "Ready"
	clusterPhaseNotReady = "NotReady"
	clusterHealthy       = "Healthy"
	clusterUnhealthy     = "Unhealthy"
	clusterHealthyMsg    = "connection validated"
)

// ListClusters returns the KubevirtConfig names, sorted.
func (a *Activities) ListClusters(ctx context.Context) ([]string, error) {
	configs, err := a.clients.ListKubevirtConfigs(ctx)
	if err != nil {
		return nil, classify(err, "list KubevirtConfigs")
	}
	out := make([]string, 0, len(configs))
	for _, c := range configs {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return out, nil
}

// CheckCluster validates one cluster. An unhealthy cluster is a result,
// not an error: the health-check workflow reports every cluster.
func (a *Activities) CheckCluster(ctx context.Context, ref contract.ClusterRef) (contract.ClusterHealth, error) {
	start := a.now()
	err := a.clients.ValidateConnection(ctx, ref.KubevirtConfig)
	health := contract.ClusterHealth{KubevirtConfig: ref.KubevirtConfig, Healthy: err == nil, CheckedAt: start, Duration: a.now().Sub(start)}
	if err != nil {
		if ctx.Err() != nil {
			return contract.ClusterHealth{}, ctx.Err()
		}
		// Classified errors name the config and the cause from API statuses
		// and transports only, never Secret data.
		health.Reason = classify(err, "validate KubevirtConfig "+ref.KubevirtConfig).Error()
	}
	return health, nil
}

// RecordClusterHealth writes a check's outcome to the KubevirtConfig's
// status on the supervisor, only when phase, status or message change (the
// check time stays out of the status so that steady health writes nothing).
func (a *Activities) RecordClusterHealth(ctx context.Context, h contract.ClusterHealth) error {
	phase, status, message := clusterPhaseReady, clusterHealthy, clusterHealthyMsg
	if !h.Healthy {
		phase, status, message = clusterPhaseNotReady, clusterUnhealthy, h.Reason
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		kvc := &v1alpha1.KubevirtConfig{}
		if err := a.supervisor.Get(ctx, client.ObjectKey{Name: h.KubevirtConfig}, kvc); err != nil {
			return err
		}
		if kvc.Status.Phase == phase && kvc.Status.Status == status && kvc.Status.Message == message {
			return nil
		}
		kvc.Status.Phase, kvc.Status.Status, kvc.Status.Message = phase, status, message
		return a.supervisor.Status().Update(ctx, kvc)
	})
	if apierrors.IsNotFound(err) {
		return nil // deleted since it was listed: nothing to record
	}
	return classify(err, fmt.Sprintf("record health of KubevirtConfig %q", h.KubevirtConfig))
}
