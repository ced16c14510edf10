package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"

	"github.com/machineflow/machineflow/activities/contract"
)

type healthCheckSuite struct{ workflowSuite }

func TestClusterHealthCheck(t *testing.T) { suite.Run(t, new(healthCheckSuite)) }

func (s *healthCheckSuite) recorded() []contract.ClusterHealth {
	var out []contract.ClusterHealth
	for _, in := range s.f.inputs(contract.RecordClusterHealthName) {
		out = append(out, in.(contract.ClusterHealth))
	}
	return out
}

func (s *healthCheckSuite) TestMixedResultsAndASlowCluster() {
	s.f.on(contract.ListClustersName, func(context.Context, any) (any, error) {
		return []string{"kv-slow", "kv-a", "kv-down", "kv-err"}, nil
	})
	// fastRecorded closes once the three fast clusters are recorded. The
	// slow cluster's check waits for it, so the run only succeeds if
	// records do not wait for every check.
	fastRecorded := make(chan struct{})
	var mu sync.Mutex
	recordedFast := 0
	s.f.on(contract.RecordClusterHealthName, func(_ context.Context, in any) (any, error) {
		if in.(contract.ClusterHealth).KubevirtConfig != "kv-slow" {
			mu.Lock()
			recordedFast++
			if recordedFast == 3 {
				close(fastRecorded)
			}
			mu.Unlock()
		}
		return nil, nil
	})
	s.f.on(contract.CheckClusterName, func(ctx context.Context, in any) (any, error) {
		name := in.(contract.ClusterRef).KubevirtConfig
		switch name {
		case "kv-slow":
			select {
			case <-fastRecorded:
				return contract.ClusterHealth{KubevirtConfig: name, Healthy: true, Duration: 20 * time.Second}, nil
			case <-time.After(10 * time.Second):
				return nil, errors.New("the fast clusters were not recorded while kv-slow was being checked")
			}
		case "kv-down":
			return contract.ClusterHealth{KubevirtConfig: name, Reason: "KubevirtConfig kv-down: connection refused", Duration: time.Second}, nil
		case "kv-err":
			return nil, temporal.NewApplicationError("worker lost its client", "Internal")
		default:
			return contract.ClusterHealth{KubevirtConfig: name, Healthy: true, Duration: 100 * time.Millisecond}, nil
		}
	})
	s.env.ExecuteWorkflow(ClusterHealthCheckName)
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())

	var report HealthReport
	s.Require().NoError(s.env.GetWorkflowResult(&report))
	s.Require().Len(report.Clusters, 4)
	names := []string{}
	for _, c := range report.Clusters {
		names = append(names, c.KubevirtConfig)
	}
	s.Equal([]string{"kv-a", "kv-down", "kv-err", "kv-slow"}, names, "sorted by name")
	s.True(report.Clusters[0].Healthy)
	s.False(report.Clusters[1].Healthy)
	s.Equal("KubevirtConfig kv-down: connection refused", report.Clusters[1].Reason)
	s.False(report.Clusters[2].Healthy)
	s.Equal("health check did not complete: Internal: worker lost its client", report.Clusters[2].Reason)
	s.False(report.Clusters[2].CheckedAt.IsZero())
	s.True(report.Clusters[3].Healthy, "kv-slow saw the others recorded first")
	s.Equal(20*time.Second, report.Clusters[3].Duration)

	recorded := s.recorded()
	s.Require().Len(recorded, 4)
	s.Equal("kv-slow", recorded[3].KubevirtConfig, "the slow cluster is recorded last")
	s.ElementsMatch(report.Clusters, recorded, "what is recorded is what is reported")
	s.ElementsMatch([]any{contract.ClusterRef{KubevirtConfig: "kv-down"}, contract.ClusterRef{KubevirtConfig: "kv-err"}},
		s.f.inputs(contract.InvalidateClusterClientName), "only unhealthy clusters lose their cached client")
	s.Equal(2+1+1+1, s.f.count(contract.CheckClusterName), "kv-err's check is attempted twice")
}

func (s *healthCheckSuite) TestNoClusters() {
	s.f.on(contract.ListClustersName, func(context.Context, any) (any, error) { return []string{}, nil })
	s.env.ExecuteWorkflow(ClusterHealthCheckName)
	s.Require().NoError(s.env.GetWorkflowError())
	var report HealthReport
	s.Require().NoError(s.env.GetWorkflowResult(&report))
	s.Empty(report.Clusters)
	s.Equal([]string{contract.ListClustersName}, s.f.called())
}

func (s *healthCheckSuite) TestListFailure() {
	s.f.on(contract.ListClustersName, func(context.Context, any) (any, error) {
		return nil, temporal.NewNonRetryableApplicationError("list KubevirtConfigs: forbidden", contract.ErrTypeUnauthorized, nil)
	})
	s.env.ExecuteWorkflow(ClusterHealthCheckName)
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "list KubevirtConfigs")
	s.Equal([]string{contract.ListClustersName}, s.f.called())
}

func (s *healthCheckSuite) TestRecordFailureFailsTheRunAfterEveryCluster() {
	s.f.on(contract.ListClustersName, func(context.Context, any) (any, error) {
		return []string{"kv-a", "kv-b"}, nil
	})
	s.f.on(contract.RecordClusterHealthName, func(_ context.Context, in any) (any, error) {
		if in.(contract.ClusterHealth).KubevirtConfig == "kv-a" {
			return nil, temporal.NewNonRetryableApplicationError("KubevirtConfig kv-a not found", contract.ErrTypeConfigNotFound, nil)
		}
		return nil, nil
	})
	s.env.ExecuteWorkflow(ClusterHealthCheckName)
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "record health of KubevirtConfig kv-a")
	s.Len(s.recorded(), 2, "kv-b is recorded despite kv-a's failure")
}
