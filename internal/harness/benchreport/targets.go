package benchreport

import (
	"fmt"
	"strings"
)

// Target is a bound a benchmark's metric must meet.
type Target struct {
	// Section and Name select the benchmarks; a Name ending in * matches
	// every name with that prefix.
	Section, Name string
	Metric        string
	// Op is "<=", ">=" or "==". The bound is Value, or the benchmark's own
	// metric named Same when that is set.
	Op    string
	Value float64
	Same  string
}

// Targets are the figures each benchmark must reach, by benchmark.
var Targets = []Target{
	{Section: "clients", Name: "BenchmarkGetClientForConfigCached", Metric: "ns/op", Op: "<=", Value: 100},
	{Section: "clients", Name: "BenchmarkGetClientForConfigCached", Metric: "allocs/op", Op: "<=", Value: 0},
	{Section: "clients", Name: "BenchmarkGetClientForConfigCachedParallel", Metric: "ns/op", Op: "<=", Value: 100},
	{Section: "clients", Name: "BenchmarkGetClientForConfigCachedParallel", Metric: "allocs/op", Op: "<=", Value: 0},
	{Section: "health", Name: "BenchmarkClusterHealthFanOut/HealthCheck", Metric: "T", Op: "<=", Value: 1.5},
	{Section: "health", Name: "BenchmarkClusterHealthFanOut/workflow*", Metric: "T", Op: "<=", Value: 1.5},
	{Section: "e2e", Name: "BenchmarkProvision/limits=*", Metric: "machines/s", Op: ">=", Value: 20},
	{Section: "e2e", Name: "BenchmarkProvisionHistory", Metric: "events/provision-boot-10s", Op: "==", Same: "events/provision-boot-0s"},
}

// TargetsOf returns the targets that apply to rec.
func TargetsOf(rec Record) []Target {
	var out []Target
	for _, t := range Targets {
		if t.matches(rec) {
			out = append(out, t)
		}
	}
	return out
}

func (t Target) matches(rec Record) bool {
	if t.Section != rec.Section {
		return false
	}
	if prefix, ok := strings.CutSuffix(t.Name, "*"); ok {
		return strings.HasPrefix(rec.Name, prefix)
	}
	return t.Name == rec.Name
}

// Check reports whether rec meets t; known is false when rec lacks a
// metric t needs (which counts as not met).
func (t Target) Check(rec Record) (met, known bool) {
	v, ok := rec.Metrics[t.Metric]
	if !ok {
		return false, false
	}
	bound := t.Value
	if t.Same != "" {
		if bound, ok = rec.Metrics[t.Same]; !ok {
			return false, false
		}
	}
	switch t.Op {
	case "<=":
		return v <= bound, true
	case ">=":
		return v >= bound, true
	case "==":
		return v == bound, true
	}
	return false, true
}

// String writes t as the table shows it, e.g. "ns/op ≤ 100".
func (t Target) String() string {
	op := map[string]string{"<=": "≤", ">=": "≥", "==": "="}[t.Op]
	bound := formatValue(t.Value)
	if t.Same != "" {
		bound = t.Same
	}
	return fmt.Sprintf("%s %s %s", t.Metric, op, bound)
}
