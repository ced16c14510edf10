package scale

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// cpuSample is the CPU time used so far by each process of the stack, and
// by the whole machine.
type cpuSample struct {
	at          time.Time
	byLabel     map[string]time.Duration
	busy, total time.Duration
}

// cpuUse is the CPU time used between two samples: where a section's
// time went, which is what says what limits it on a two-core machine.
type cpuUse struct {
	wall        time.Duration
	byLabel     map[string]time.Duration
	busy, total time.Duration
}

// sampleCPU reads the CPU time of this process and everything it started,
// labelled by what each is: the worker, the controller, Temporal, each API
// server and its etcd by cluster, and this process (the simulators, the
// starter API calls, the watches).
func (e *env) sampleCPU(b *testing.B) cpuSample {
	b.Helper()
	procs, err := descendants()
	if err != nil {
		b.Fatal(err)
	}
	busy, total, err := machineCPU()
	if err != nil {
		b.Fatal(err)
	}
	s := cpuSample{at: time.Now(), byLabel: map[string]time.Duration{}, busy: busy, total: total}
	for _, p := range procs {
		s.byLabel[e.label(p, procs)] += p.cpu
	}
	return s
}

func (e *env) label(p proc, all []proc) string {
	for _, w := range e.Workers {
		if w.Running() && w.Pid() == p.pid {
			return "worker"
		}
	}
	if c := e.Controller; c != nil && c.Running() && c.Pid() == p.pid {
		return "controller"
	}
	switch {
	case p.pid == os.Getpid():
		return "bench (simulators, starter API, watches)"
	case p.comm == "kube-apiserver":
		return "kube-apiserver " + e.role("127.0.0.1:"+flagValue(p.args, "secure-port"))
	case p.comm == "etcd":
		client := flagValue(p.args, "listen-client-urls")
		for _, a := range all {
			if a.comm == "kube-apiserver" && flagValue(a.args, "etcd-servers") == client {
				return "etcd " + e.role("127.0.0.1:"+flagValue(a.args, "secure-port"))
			}
		}
	}
	return p.comm
}

// role is the name of the API server at host:port, or host:port.
func (e *env) role(host string) string {
	return cmp.Or(e.roles[host], host)
}

// since is the CPU used from earlier to s.
func (s cpuSample) since(earlier cpuSample) cpuUse {
	u := cpuUse{wall: s.at.Sub(earlier.at), byLabel: map[string]time.Duration{}, busy: s.busy - earlier.busy, total: s.total - earlier.total}
	for label, t := range s.byLabel {
		if d := t - earlier.byLabel[label]; d > 0 {
			u.byLabel[label] = d
		}
	}
	return u
}

// of is the CPU time of the processes labelled label.
func (u cpuUse) of(label string) time.Duration { return u.byLabel[label] }

// ours is the CPU time of all the stack's processes.
func (u cpuUse) ours() time.Duration {
	var sum time.Duration
	for _, t := range u.byLabel {
		sum += t
	}
	return sum
}

// busyPercent is how busy all CPUs of the machine were, other users'
// processes included.
func (u cpuUse) busyPercent() float64 {
	if u.total <= 0 {
		return 0
	}
	return 100 * float64(u.busy) / float64(u.total)
}

// String is one line, busiest first, in cores used on average (CPU
// seconds over wall seconds): benchmark logs keep only a few lines.
func (u cpuUse) String() string {
	labels := slices.SortedFunc(maps.Keys(u.byLabel), func(a, b string) int { return cmp.Compare(u.byLabel[b], u.byLabel[a]) })
	cores := func(t time.Duration) float64 { return t.Seconds() / u.wall.Seconds() }
	parts := make([]string, len(labels))
	for i, label := range labels {
		parts[i] = fmt.Sprintf("%s %.2f", label, cores(u.byLabel[label]))
	}
	return fmt.Sprintf("cores used over %s: %s; all of these %.2f; the whole machine %.2f of %.0f (other users included)",
		u.wall.Round(100*time.Millisecond), strings.Join(parts, ", "), cores(u.ours()), cores(u.busy), u.total.Seconds()/u.wall.Seconds())
}
