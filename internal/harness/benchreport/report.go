package benchreport

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Sections in the order make bench runs them; the report lists them so.
var Sections = []string{"clients", "health", "e2e", "units"}

// Report is the content of results.json: the latest results of every
// section, each section replaced as a whole when it runs again.
type Report struct {
	// Runs holds each section's latest run, also when it measured nothing
	// (a package that failed to build).
	Runs       map[string]Run `json:"runs"`
	Benchmarks []Record       `json:"benchmarks"`
}

// Record is one benchmark's result with the run that produced it.
type Record struct {
	Section    string             `json:"section"`
	Package    string             `json:"package"`
	Name       string             `json:"name"`
	Procs      int                `json:"procs"`
	Iterations int64              `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"`
	Run        Run                `json:"run"`
}

// Run describes a section's run.
type Run struct {
	Date      time.Time `json:"date"`
	GoVersion string    `json:"goVersion"`
	// CPUs is the number of logical CPUs; CPU the model go test printed.
	CPUs int    `json:"cpus"`
	CPU  string `json:"cpu,omitempty"`
	// Commit is the git commit checked out, "-dirty" when the tree had
	// changes.
	Commit string `json:"commit,omitempty"`
	// Failed is set when go test failed: the section's figures may be
	// incomplete.
	Failed bool `json:"failed,omitempty"`
}

// Load reads a report written by WriteJSON; a missing file is an empty
// report.
func Load(path string) (Report, error) {
	var r Report
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("reading the report: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("decoding the report %s: %w", path, err)
	}
	return r, nil
}

// Merge replaces section's records by results, all from run, and keeps
// the records in section order, each section in the order it ran.
func (r *Report) Merge(section string, run Run, results []Result) {
	if r.Runs == nil {
		r.Runs = map[string]Run{}
	}
	r.Runs[section] = run
	r.Benchmarks = slices.DeleteFunc(r.Benchmarks, func(rec Record) bool { return rec.Section == section })
	for _, res := range results {
		r.Benchmarks = append(r.Benchmarks, Record{
			Section: section, Package: res.Package, Name: res.Name, Procs: res.Procs,
			Iterations: res.Iterations, Metrics: res.Metrics, Run: run,
		})
	}
	slices.SortStableFunc(r.Benchmarks, func(a, b Record) int { return compareSections(a.Section, b.Section) })
}

// compareSections orders known sections as make bench runs them, others
// after them by name.
func compareSections(a, b string) int {
	rank := func(s string) int {
		if i := slices.Index(Sections, s); i >= 0 {
			return i
		}
		return len(Sections)
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	return nil
}

// standardUnits get columns of their own; other metrics share one.
var standardUnits = []string{"ns/op", "B/op", "allocs/op"}

// WriteMarkdown writes the report as a table, one row per benchmark,
// each with its targets and whether it met them, after a line per section
// saying when and where it ran.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Benchmark results\n\n")
	for _, section := range slices.SortedFunc(maps.Keys(r.Runs), compareSections) {
		run := r.Runs[section]
		fmt.Fprintf(&b, "- %s: %s, commit %s, %s, %d CPUs", section, run.Date.UTC().Format(time.RFC3339),
			cmp.Or(run.Commit, "unknown"), run.GoVersion, run.CPUs)
		if run.CPU != "" {
			fmt.Fprintf(&b, " (%s)", run.CPU)
		}
		if run.Failed {
			b.WriteString(", **go test failed: figures may be missing**")
		}
		if !slices.ContainsFunc(r.Benchmarks, func(rec Record) bool { return rec.Section == section }) {
			b.WriteString(", no benchmarks")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n| section | benchmark | time/op | B/op | allocs/op | other metrics | target | result |\n")
	b.WriteString("|---|---|---:|---:|---:|---|---|---|\n")
	for _, rec := range r.Benchmarks {
		var other []string
		for _, unit := range slices.Sorted(maps.Keys(rec.Metrics)) {
			if !slices.Contains(standardUnits, unit) {
				other = append(other, formatValue(rec.Metrics[unit])+" "+unit)
			}
		}
		var targets, missed []string
		for _, t := range TargetsOf(rec) {
			targets = append(targets, t.String())
			switch met, known := t.Check(rec); {
			case !known:
				missed = append(missed, t.Metric+" (not reported)")
			case !met:
				missed = append(missed, t.Metric)
			}
		}
		result := ""
		switch {
		case len(targets) == 0:
		case len(missed) == 0:
			result = "met"
		default:
			result = "**missed**: " + strings.Join(missed, ", ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", rec.Section, rec.Name,
			metric(rec, "ns/op", formatDuration), metric(rec, "B/op", formatValue), metric(rec, "allocs/op", formatValue),
			strings.Join(other, ", "), strings.Join(targets, "; "), result)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

func metric(rec Record, unit string, format func(float64) string) string {
	v, ok := rec.Metrics[unit]
	if !ok {
		return ""
	}
	return format(v)
}

// formatDuration writes ns as a duration with 3 significant digits.
func formatDuration(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.3g ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	default:
		return fmt.Sprintf("%.3g s", ns/1e9)
	}
}

// formatValue writes v with 4 significant digits, whole numbers in full.
func formatValue(v float64) string {
	if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.4g", v)
}
