package childproc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Proc identifies a process by pid and start time, so that a pid reused by
// an unrelated process is not mistaken for it.
type Proc struct {
	PID       int
	Comm      string
	startTime uint64 // clock ticks after boot, /proc/<pid>/stat field 22
}

func (p Proc) String() string { return fmt.Sprintf("%s(%d)", p.Comm, p.PID) }

// Alive reports whether the process still exists and is not a zombie.
func (p Proc) Alive() bool {
	st, err := readStat(p.PID)
	return err == nil && st.startTime == p.startTime && st.state != 'Z'
}

type stat struct {
	Proc
	ppid  int
	state byte
}

// Descendants lists the processes below pid (children, their children, ...)
// from /proc; it is how Stop finds what a child left behind, and how tests
// prove nothing was. Linux only: elsewhere it returns an
// error.
func Descendants(pid int) ([]Proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	children := map[int][]stat{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(n)
		if err != nil {
			continue // exited meanwhile
		}
		children[st.ppid] = append(children[st.ppid], st)
	}
	var out []Proc
	queue := []int{pid}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		for _, c := range children[parent] {
			out = append(out, c.Proc)
			queue = append(queue, c.PID)
		}
	}
	return out, nil
}

// readStat parses /proc/<pid>/stat. The command name is in parentheses and
// may itself contain spaces and parentheses: fields start after the last ')'.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, err
	}
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// After ')': state(3) ppid(4) pgrp(5) ... starttime(22).
	f := bytes.Fields(b[closing+1:])
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %d fields after the command, want >= 20", pid, len(f))
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	return stat{Proc: Proc{PID: pid, Comm: string(b[open+1 : closing]), startTime: start}, ppid: ppid, state: f[0][0]}, nil
}
