package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Output formats of -o.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// printer writes a command's result in the chosen format. Results go to
// out; progress and notes to errOut, so `-o json | jq` sees one document.
type printer struct {
	out, errOut io.Writer
	format      string
}

func validateFormat(f string) error {
	if f != formatTable && f != formatJSON {
		return usageErrorf("--output %q: want %s or %s", f, formatTable, formatJSON)
	}
	return nil
}

func (p printer) json() bool { return p.format == formatJSON }

// writeJSON prints v as indented JSON.
func (p printer) writeJSON(v any) error {
	enc := json.NewEncoder(p.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// table prints rows under an upper-case header, columns aligned.
func (p printer) table(header []string, rows [][]string) error {
	w := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// field is one "Key: value" line of a described object.
type field struct{ key, value string }

// fields prints "Key:  value" lines, values aligned; empty values are
// skipped so optional fields do not clutter the output.
func (p printer) fields(indent string, fs []field) error {
	w := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	for _, f := range fs {
		if f.value != "" {
			fmt.Fprintf(w, "%s%s:\t%s\n", indent, f.key, f.value)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write fields: %w", err)
	}
	return nil
}

// note prints a line for people; it never goes to the result stream.
func (p printer) note(format string, args ...any) {
	fmt.Fprintf(p.errOut, format+"\n", args...)
}

// timestamp formats a time for tables: RFC 3339 in UTC, or "" when unset.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
