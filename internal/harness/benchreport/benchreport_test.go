package benchreport

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseFile(t *testing.T, path string) Output {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out, err := Parse(f)
	require.NoError(t, err)
	return out
}

func TestParse(t *testing.T) {
	out := parseFile(t, "testdata/two-packages.txt")
	assert.Equal(t, "AMD EPYC", out.CPU)
	assert.False(t, out.Failed)
	const clients, workflows = "github.com/machineflow/machineflow/clients", "github.com/machineflow/machineflow/workflows"
	assert.Equal(t, []Result{
		{Package: clients, Name: "BenchmarkGetClientForConfigCached", Procs: 2, Iterations: 20449974,
			Metrics: map[string]float64{"ns/op": 59.11, "B/op": 0, "allocs/op": 0}},
		{Package: clients, Name: "BenchmarkGetClientForConfigCold/burst=64", Procs: 2, Iterations: 469,
			Metrics: map[string]float64{"ns/op": 2516776, "secretReads/burst": 1.002, "B/op": 123917, "allocs/op": 1545}},
		{Package: workflows, Name: "BenchmarkClusterHealthFanOut/HealthCheck", Procs: 2, Iterations: 5,
			Metrics: map[string]float64{"ns/op": 1007491827, "T": 1.006, "T-max": 1.012, "B/op": 1156763, "allocs/op": 13256}},
		{Package: workflows, Name: "BenchmarkClusterHealthFanOut/workflow", Procs: 2, Iterations: 5,
			Metrics: map[string]float64{"ns/op": 4066228485, "T": 4.013, "T-max": 4.427, "B/op": 10154070, "allocs/op": 135743}},
	}, out.Results)
}

func TestParseFailuresAndOddLines(t *testing.T) {
	for name, tc := range map[string]struct {
		text   string
		failed bool
		names  []string
	}{
		"failed benchmark": {
			text:   "BenchmarkA-2 \t 10\t 5 ns/op\n--- FAIL: BenchmarkB\n    x_test.go:1: boom\nFAIL\n",
			failed: true, names: []string{"BenchmarkA"},
		},
		"panic": {text: "panic: runtime error\n", failed: true},
		"missing package": {
			text:   "FAIL\t./test/scale [setup failed]\n",
			failed: true,
		},
		"GOMAXPROCS 1 has no suffix": {text: "BenchmarkA \t 10\t 5 ns/op\n", names: []string{"BenchmarkA"}},
		"a test log is no benchmark": {
			text:  "    BenchmarkA-2 logged\n    12\t5 ns/op\nok \tpkg\t1s\n",
			names: nil,
		},
		"unit without a value": {text: "BenchmarkA-2 \t 10\t ns/op\n"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := Parse(strings.NewReader(tc.text))
			require.NoError(t, err)
			assert.Equal(t, tc.failed, out.Failed)
			var names []string
			for _, r := range out.Results {
				names = append(names, r.Name)
			}
			assert.Equal(t, tc.names, names)
		})
	}
}

func TestSplitProcs(t *testing.T) {
	for in, want := range map[string]struct {
		name  string
		procs int
	}{
		"BenchmarkA-8":          {"BenchmarkA", 8},
		"BenchmarkA/burst=64-2": {"BenchmarkA/burst=64", 2},
		"BenchmarkA/x-y":        {"BenchmarkA/x-y", 1},
		"BenchmarkA":            {"BenchmarkA", 1},
	} {
		name, procs := splitProcs(in)
		assert.Equal(t, want.name, name, in)
		assert.Equal(t, want.procs, procs, in)
	}
}

func results(names ...string) []Result {
	var out []Result
	for _, n := range names {
		out = append(out, Result{Name: n, Procs: 2, Iterations: 1, Metrics: map[string]float64{"ns/op": 1}})
	}
	return out
}

func names(r Report) []string {
	var out []string
	for _, rec := range r.Benchmarks {
		out = append(out, rec.Section+":"+rec.Name)
	}
	return out
}

func TestMergeReplacesOneSectionAndKeepsSectionOrder(t *testing.T) {
	first := Run{Date: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Commit: "aaa"}
	second := Run{Date: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), Commit: "bbb"}
	var r Report
	r.Merge("units", first, results("BenchmarkU"))
	r.Merge("clients", first, results("BenchmarkC1", "BenchmarkC2"))
	r.Merge("health", first, results("BenchmarkH"))
	assert.Equal(t, []string{"clients:BenchmarkC1", "clients:BenchmarkC2", "health:BenchmarkH", "units:BenchmarkU"}, names(r))

	r.Merge("clients", second, results("BenchmarkC3"))
	assert.Equal(t, []string{"clients:BenchmarkC3", "health:BenchmarkH", "units:BenchmarkU"}, names(r))
	assert.Equal(t, "bbb", r.Benchmarks[0].Run.Commit, "the new section carries its run")
	assert.Equal(t, "aaa", r.Benchmarks[1].Run.Commit, "other sections keep theirs")

	r.Merge("custom", second, results("BenchmarkX"))
	r.Merge("e2e", second, nil)
	assert.Equal(t, "custom:BenchmarkX", names(r)[len(r.Benchmarks)-1], "unknown sections go last")
	assert.Equal(t, map[string]Run{"clients": second, "health": first, "units": first, "custom": second, "e2e": second}, r.Runs,
		"a section that measured nothing still has its run")
}

func TestJSONRoundTrip(t *testing.T) {
	var r Report
	run := Run{Date: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC), GoVersion: "go1.26.8", CPUs: 2, CPU: "AMD EPYC", Commit: "abc-dirty", Failed: true}
	r.Merge("clients", run, parseFile(t, "testdata/two-packages.txt").Results)
	var buf bytes.Buffer
	require.NoError(t, r.WriteJSON(&buf))
	assert.Contains(t, buf.String(), `"name": "BenchmarkGetClientForConfigCached"`)
	assert.Contains(t, buf.String(), `"secretReads/burst": 1.002`)
	assert.Contains(t, buf.String(), `"goVersion": "go1.26.8"`)

	path := t.TempDir() + "/results.json"
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	back, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, r, back)

	empty, err := Load(t.TempDir() + "/none.json")
	require.NoError(t, err, "a missing report is an empty one")
	assert.Empty(t, empty.Benchmarks)
}

func TestMarkdownMarksTargets(t *testing.T) {
	run := Run{Date: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC), GoVersion: "go1.26.8", CPUs: 2, CPU: "AMD EPYC", Commit: "abc"}
	var r Report
	r.Merge("clients", run, []Result{
		{Name: "BenchmarkGetClientForConfigCached", Procs: 2, Iterations: 9, Metrics: map[string]float64{"ns/op": 59.11, "B/op": 0, "allocs/op": 0}},
		{Name: "BenchmarkGetClientForConfigCachedParallel", Procs: 2, Iterations: 9, Metrics: map[string]float64{"ns/op": 120, "B/op": 16, "allocs/op": 1}},
		{Name: "BenchmarkGetClientForConfigMemory", Procs: 2, Iterations: 9, Metrics: map[string]float64{"ns/op": 2.1e7, "B/client": 8516.4}},
	})
	r.Merge("health", Run{Date: run.Date, Failed: true}, []Result{
		{Name: "BenchmarkClusterHealthFanOut/workflow-noretry", Procs: 2, Iterations: 5, Metrics: map[string]float64{"ns/op": 1.6e9, "T": 1.563}},
		{Name: "BenchmarkClusterHealthFanOut/HealthCheck", Procs: 2, Iterations: 5, Metrics: map[string]float64{"ns/op": 1.0e9}},
	})
	r.Merge("e2e", run, []Result{
		{Name: "BenchmarkProvisionHistory", Procs: 2, Iterations: 1, Metrics: map[string]float64{"events/provision-boot-0s": 61, "events/provision-boot-10s": 61}},
	})
	r.Merge("units", Run{Date: run.Date, GoVersion: "go1.26.8", CPUs: 2, Failed: true}, nil)
	var buf bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&buf))
	table := buf.String()
	row := func(name string) string {
		for _, line := range strings.Split(table, "\n") {
			if strings.Contains(line, "| "+name+" |") {
				return line
			}
		}
		t.Fatalf("no row for %s in\n%s", name, table)
		return ""
	}
	assert.Contains(t, table, "- clients: 2025-01-01T12:00:00Z, commit abc, go1.26.8, 2 CPUs (AMD EPYC)\n")
	assert.Contains(t, table, "- health: 2025-01-01T12:00:00Z, commit unknown, , 0 CPUs, **go test failed: figures may be missing**\n")
	assert.Contains(t, table, "- units: 2025-01-01T12:00:00Z, commit unknown, go1.26.8, 2 CPUs, **go test failed: figures may be missing**, no benchmarks\n")
	assert.Less(t, strings.Index(table, "- clients:"), strings.Index(table, "- health:"), "sections in make bench's order")
	assert.Less(t, strings.Index(table, "- e2e:"), strings.Index(table, "- units:"), "sections in make bench's order")
	assert.Equal(t, "| clients | BenchmarkGetClientForConfigCached | 59.1 ns | 0 | 0 |  | ns/op ≤ 100; allocs/op ≤ 0 | met |",
		row("BenchmarkGetClientForConfigCached"))
	assert.Equal(t, "| clients | BenchmarkGetClientForConfigCachedParallel | 120 ns | 16 | 1 |  | ns/op ≤ 100; allocs/op ≤ 0 | **missed**: ns/op, allocs/op |",
		row("BenchmarkGetClientForConfigCachedParallel"))
	assert.Equal(t, "| clients | BenchmarkGetClientForConfigMemory | 21 ms |  |  | 8516 B/client |  |  |",
		row("BenchmarkGetClientForConfigMemory"))
	assert.Equal(t, "| health | BenchmarkClusterHealthFanOut/workflow-noretry | 1.6 s |  |  | 1.563 T | T ≤ 1.5 | **missed**: T |",
		row("BenchmarkClusterHealthFanOut/workflow-noretry"))
	assert.Equal(t, "| health | BenchmarkClusterHealthFanOut/HealthCheck | 1 s |  |  |  | T ≤ 1.5 | **missed**: T (not reported) |",
		row("BenchmarkClusterHealthFanOut/HealthCheck"))
	assert.Equal(t, "| e2e | BenchmarkProvisionHistory |  |  |  | 61 events/provision-boot-0s, 61 events/provision-boot-10s | events/provision-boot-10s = events/provision-boot-0s | met |",
		row("BenchmarkProvisionHistory"))
}

func TestTargets(t *testing.T) {
	for _, tg := range Targets {
		assert.Contains(t, []string{"<=", ">=", "=="}, tg.Op, "%+v", tg)
		assert.Contains(t, Sections, tg.Section, "%+v", tg)
	}
	provision := Record{Section: "e2e", Name: "BenchmarkProvision/limits=default", Metrics: map[string]float64{"machines/s": 19.9}}
	require.Len(t, TargetsOf(provision), 1, "BenchmarkProvision's target is not BenchmarkProvisionHistory's")
	require.Len(t, TargetsOf(Record{Section: "e2e", Name: "BenchmarkProvision/limits=raised"}), 1, "each limits variant has the target")
	met, known := TargetsOf(provision)[0].Check(provision)
	assert.True(t, known)
	assert.False(t, met, "19.9 machines/s is below 20")
	provision.Metrics["machines/s"] = 20
	met, _ = TargetsOf(provision)[0].Check(provision)
	assert.True(t, met)
	assert.Empty(t, TargetsOf(Record{Section: "units", Name: "BenchmarkProvision/limits=default"}), "targets are per section")
}
