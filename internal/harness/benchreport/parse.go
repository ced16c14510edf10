package benchreport

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Result is one benchmark line of `go test -bench` output.
type Result struct {
	// Package is the import path from the preceding "pkg:" line.
	Package string
	// Name is the benchmark's full name (sub-benchmarks included) without
	// the -GOMAXPROCS suffix.
	Name string
	// Procs is GOMAXPROCS, from that suffix (1 when there is none).
	Procs      int
	Iterations int64
	// Metrics maps each unit (ns/op, B/op, allocs/op, or one given to
	// b.ReportMetric) to its value.
	Metrics map[string]float64
}

// Output is what one `go test -bench` invocation printed.
type Output struct {
	Results []Result
	// CPU is the processor model from the "cpu:" line.
	CPU string
	// Failed is set when a test, benchmark or package failed or panicked.
	Failed bool
}

// Parse reads `go test -bench` output. Lines it does not know (test
// logs, PASS, ok) are skipped. A benchmark that prints to standard
// output while it runs splits its line in two (name first, figures after
// the printed text); Parse joins them.
func Parse(r io.Reader) (Output, error) {
	var out Output
	var pkg, pending string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "pkg: "))
			continue
		case strings.HasPrefix(line, "cpu: "):
			out.CPU = strings.TrimSpace(strings.TrimPrefix(line, "cpu: "))
			continue
		case strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "panic: "):
			out.Failed = true
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if strings.HasPrefix(line, "Benchmark") { // logs are indented
			if res, ok := figures(fields[0], fields[1:]); ok {
				res.Package = pkg
				out.Results = append(out.Results, res)
				pending = ""
			} else {
				pending = fields[0]
			}
			continue
		}
		if pending != "" {
			if res, ok := figures(pending, fields); ok {
				res.Package = pkg
				out.Results = append(out.Results, res)
				pending = ""
			}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading go test output: %w", err)
	}
	return out, nil
}

// figures parses the iterations and value-unit pairs that follow a
// benchmark's name.
func figures(name string, fields []string) (Result, bool) {
	if len(fields) < 3 || len(fields)%2 != 1 {
		return Result{}, false
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return Result{}, false
	}
	res := Result{Iterations: n, Metrics: map[string]float64{}}
	for i := 1; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return Result{}, false
		}
		res.Metrics[fields[i+1]] = v
	}
	res.Name, res.Procs = splitProcs(name)
	return res, true
}

// splitProcs cuts the -N suffix that go test appends to a benchmark's name
// when GOMAXPROCS is N > 1.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name, 1
	}
	procs, err := strconv.Atoi(name[i+1:])
	if err != nil || procs < 1 {
		return name, 1
	}
	return name[:i], procs
}
