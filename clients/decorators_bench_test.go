package clients

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// BenchmarkDecoratedGetClientForConfig is the worker's hot path: the
// metrics and resilient decorators over a manager that answers from
// memory, so the figure is the decorators' own cost per call.
func BenchmarkDecoratedGetClientForConfig(b *testing.B) {
	mock := NewMockClientManager()
	mock.AddMockedClient("a", fake.NewClientBuilder().WithScheme(testScheme(b)).Build())
	for name, cm := range map[string]ClientManager{
		"mock":              mock,
		"resilient":         NewResilientClientManager(mock, ResilienceOptions{}),
		"metrics+resilient": mustMetrics(b, NewResilientClientManager(mock, ResilienceOptions{})),
	} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cm.GetClientForConfig(ctx, "a"); err != nil {
					b.Fatal(err)
				}
				mock.ResetCallTracking() // keep the mock's call records from growing
			}
		})
	}
}

// BenchmarkGuardedClientGet is one request through a handed-out client,
// with and without the breaker around it.
func BenchmarkGuardedClientGet(b *testing.B) {
	cluster := fake.NewClientBuilder().WithScheme(testScheme(b)).
		WithObjects(&corev1.ConfigMap{}).Build()
	mock := NewMockClientManager()
	mock.AddMockedClient("a", cluster)
	guarded, err := NewResilientClientManager(mock, ResilienceOptions{}).GetClientForConfig(context.Background(), "a")
	if err != nil {
		b.Fatal(err)
	}
	for name, c := range map[string]client.Client{"plain": cluster, "guarded": guarded} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var cm corev1.ConfigMap
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Get(ctx, client.ObjectKey{}, &cm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustMetrics(b *testing.B, next ClientManager) ClientManager {
	m, err := NewMetricsClientManager(next, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	return m
}
