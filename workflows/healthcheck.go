package workflows

import (
	"errors"
	"fmt"
	"sort"

	"go.temporal.io/sdk/workflow"

	"github.com/machineflow/machineflow/activities/contract"
)

// ClusterHealthCheck checks every KubevirtConfig in parallel. Each cluster
// runs its own check, then record and invalidate at once, in a coroutine,
// so a slow cluster delays nobody else's record. It fails, after every
// cluster has been handled, only if a result could not be recorded.
func ClusterHealthCheck(ctx workflow.Context) (HealthReport, error) {
	logger := workflow.GetLogger(ctx)
	var names []string
	if err := executeActivity(ctx, contract.ListClustersName, &names); err != nil {
		return HealthReport{}, fmt.Errorf("list KubevirtConfigs: %w", err)
	}

	report := HealthReport{Clusters: make([]contract.ClusterHealth, len(names))}
	errs := make([]error, len(names))
	wg := workflow.NewWaitGroup(ctx)
	for i, name := range names {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			report.Clusters[i], errs[i] = checkCluster(ctx, name)
		})
	}
	wg.Wait(ctx)

	sort.Slice(report.Clusters, func(i, j int) bool {
		return report.Clusters[i].KubevirtConfig < report.Clusters[j].KubevirtConfig
	})
	unhealthy := 0
	for _, c := range report.Clusters {
		if !c.Healthy {
			unhealthy++
		}
	}
	logger.Info("cluster health checked", "clusters", len(names), "unhealthy", unhealthy)
	return report, errors.Join(errs...)
}

// checkCluster checks, records and, when unhealthy, drops the cached client
// of one cluster. A check that fails (rather than reporting an unhealthy
// cluster) counts as unhealthy.
func checkCluster(ctx workflow.Context, name string) (contract.ClusterHealth, error) {
	ref := contract.ClusterRef{KubevirtConfig: name}
	started := workflow.Now(ctx)
	var health contract.ClusterHealth
	if err := executeActivity(ctx, contract.CheckClusterName, &health, ref); err != nil {
		reason, msg := describeError(err)
		now := workflow.Now(ctx)
		health = contract.ClusterHealth{
			KubevirtConfig: name,
			Reason:         fmt.Sprintf("health check did not complete: %s: %s", reason, msg),
			Duration:       now.Sub(started),
			CheckedAt:      now,
		}
	}
	if health.KubevirtConfig == "" {
		health.KubevirtConfig = name
	}

	// Recording and dropping the client do not depend on each other:
	// scheduled together, an unhealthy cluster costs one round trip to the
	// worker after its check instead of two.
	record := startActivity(ctx, contract.RecordClusterHealthName, health)
	var invalidate workflow.Future
	if !health.Healthy {
		invalidate = startActivity(ctx, contract.InvalidateClusterClientName, ref)
	}
	var errs []error
	if err := record.Get(ctx, nil); err != nil {
		errs = append(errs, fmt.Errorf("record health of KubevirtConfig %s: %w", name, err))
	}
	if invalidate != nil {
		if err := invalidate.Get(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("invalidate client of KubevirtConfig %s: %w", name, err))
		}
	}
	return health, errors.Join(errs...)
}

// startActivity schedules the named activity with its options from the
// table and returns its future.
func startActivity(ctx workflow.Context, name string, args ...any) workflow.Future {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activityOptions(name)), name, args...)
}
