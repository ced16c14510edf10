// Command benchreport merges one section's `go test -bench` output into
// .bench/results.json, rewrites .bench/results.md from it and prints the
// table (make bench). Without -in it only rewrites and prints the table.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/machineflow/machineflow/internal/harness/benchreport"
)

func main() {
	section := flag.String("section", "", "section the output belongs to: "+strings.Join(benchreport.Sections, ", "))
	in := flag.String("in", "", "file holding the section's go test -bench output")
	exit := flag.Int("exit", 0, "go test's exit status: non-zero marks the section failed")
	dir := flag.String("dir", ".bench", "directory of results.json and results.md")
	printTable := flag.Bool("print", true, "print the table")
	flag.Parse()
	if err := run(*section, *in, *exit, *dir, *printTable); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(section, in string, exit int, dir string, printTable bool) error {
	jsonPath := filepath.Join(dir, "results.json")
	report, err := benchreport.Load(jsonPath)
	if err != nil {
		return err
	}
	if in != "" {
		if section == "" {
			return fmt.Errorf("-in %s needs -section", in)
		}
		f, err := os.Open(in)
		if err != nil {
			return fmt.Errorf("reading the section's output: %w", err)
		}
		out, err := benchreport.Parse(f)
		_ = f.Close()
		if err != nil {
			return err
		}
		report.Merge(section, benchreport.Run{
			Date: time.Now(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), CPU: out.CPU,
			Commit: commit(), Failed: out.Failed || exit != 0,
		}, out.Results)
		var buf bytes.Buffer
		if err := report.WriteJSON(&buf); err != nil {
			return err
		}
		if err := write(jsonPath, buf.Bytes()); err != nil {
			return err
		}
	}
	var table bytes.Buffer
	if err := report.WriteMarkdown(&table); err != nil {
		return err
	}
	if err := write(filepath.Join(dir, "results.md"), table.Bytes()); err != nil {
		return err
	}
	if printTable {
		if _, err := os.Stdout.Write(table.Bytes()); err != nil {
			return fmt.Errorf("printing the table: %w", err)
		}
	}
	return nil
}

func write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating the report directory: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// commit names the checked-out commit, "-dirty" when the tree has changes;
// empty outside a git work tree.
func commit() string {
	head, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(head))
	if status, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(status)) > 0 {
		c += "-dirty"
	}
	return c
}
