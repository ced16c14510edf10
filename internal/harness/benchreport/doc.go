// Package benchreport turns the text that `go test -bench` prints into the
// report `make bench` leaves in .bench/: results.json, one record per
// benchmark with its metrics and the run that measured it, and
// results.md, a table of the same with each figure's target marked met or
// missed.
//
// Each make target (bench-clients, bench-health, bench-e2e, bench-units)
// saves its go test output and merges it into the report as one section,
// replacing that section's previous records, so any section can run alone
// and the report still holds the latest figures of all. It reads go test's
// text rather than -json output because the text is what people read and
// keep, and it carries everything needed: the pkg and cpu lines and one
// line per benchmark with every unit, those of b.ReportMetric included.
package benchreport
