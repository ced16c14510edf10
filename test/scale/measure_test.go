package scale

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// requestsMetric is client-go's request counter, labelled code, method
// and host; the worker and the controller both serve it.
const requestsMetric = "rest_client_requests_total"

// requests counts API requests by where they went (a role: "supervisor",
// a KubeVirt cluster's name, or the host:port itself when unknown) and by
// method.
type requests map[string]map[string]float64

// scrapeRequests reads requestsMetric from the /metrics at address and
// names each host by roles (host:port → role).
func scrapeRequests(ctx context.Context, address string, roles map[string]string) (requests, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", address, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", address, resp.Status)
	}
	return parseRequests(resp.Body, roles)
}

// parseRequests reads requestsMetric from Prometheus text: the few lines
// needed here do not justify a parser dependency.
func parseRequests(r io.Reader, roles map[string]string) (requests, error) {
	out := requests{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, requestsMetric+"{")
		if !ok {
			continue
		}
		labelText, valueText, ok := strings.Cut(rest, "} ")
		if !ok {
			return nil, fmt.Errorf("malformed sample %q", line)
		}
		value, err := strconv.ParseFloat(strings.Fields(valueText)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("malformed sample %q: %w", line, err)
		}
		labels, err := parseLabels(labelText)
		if err != nil {
			return nil, fmt.Errorf("malformed sample %q: %w", line, err)
		}
		role := labels["host"]
		if name, ok := roles[role]; ok {
			role = name
		}
		if out[role] == nil {
			out[role] = map[string]float64{}
		}
		out[role][labels["method"]] += value
	}
	return out, sc.Err()
}

// parseLabels reads `a="x",b="y"`; values are Go-quoted strings, which is
// what Prometheus's escaping (\\, \", \n) amounts to.
func parseLabels(s string) (map[string]string, error) {
	labels := map[string]string{}
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("label text %q", s)
		}
		quoted, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil, fmt.Errorf("label %s: %w", name, err)
		}
		value, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, fmt.Errorf("label %s: %w", name, err)
		}
		labels[name] = value
		s = strings.TrimPrefix(rest[len(quoted):], ",")
	}
	return labels, nil
}

// minus is r - before, per role and method.
func (r requests) minus(before requests) requests { return combine(r, before, -1) }

// plus is r + other, per role and method.
func (r requests) plus(other requests) requests { return combine(r, other, 1) }

func combine(a, b requests, sign float64) requests {
	out := requests{}
	add := func(x requests, factor float64) {
		for role, methods := range x {
			for method, n := range methods {
				if out[role] == nil {
					out[role] = map[string]float64{}
				}
				out[role][method] += factor * n
			}
		}
	}
	add(a, 1)
	add(b, sign)
	for role, methods := range out {
		for method, n := range methods {
			if n == 0 {
				delete(methods, method)
			}
		}
		if len(methods) == 0 {
			delete(out, role)
		}
	}
	return out
}

// total is the sum over the roles for which keep is true.
func (r requests) total(keep func(role string) bool) float64 {
	var sum float64
	for role, methods := range r {
		if keep(role) {
			for _, n := range methods {
				sum += n
			}
		}
	}
	return sum
}

// String is one "role method=n ..." group per role, sorted, for logs.
func (r requests) String() string {
	var b strings.Builder
	for _, role := range slices.Sorted(maps.Keys(r)) {
		fmt.Fprintf(&b, "%s:", role)
		for _, m := range slices.Sorted(maps.Keys(r[role])) {
			fmt.Fprintf(&b, " %s=%g", m, r[role][m])
		}
		b.WriteString("; ")
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// hostOf is the host:port of a REST config's Host, which may or may not
// carry a scheme; client-go labels requests with it.
func hostOf(host string) string {
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		return u.Host
	}
	return host
}

// percentile is the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method: a value that was measured, never an interpolation.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// proc is one process as /proc shows it.
type proc struct {
	pid, ppid int
	comm      string
	args      []string
	cpu       time.Duration // user + system
}

// readProc reads /proc/<pid>/stat and cmdline.
func readProc(pid int) (proc, error) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return proc{}, err
	}
	// comm is in parentheses and may contain spaces; the fields after it
	// are space-separated: state (3), ppid (4), ..., utime (14), stime (15).
	s := string(stat)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return proc{}, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	fields := strings.Fields(s[closing+1:])
	if len(fields) < 13 {
		return proc{}, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	ppid, err1 := strconv.Atoi(fields[1])
	utime, err2 := strconv.ParseInt(fields[11], 10, 64)
	stime, err3 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return proc{}, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	p := proc{pid: pid, ppid: ppid, comm: s[open+1 : closing], cpu: ticksToDuration(utime + stime)}
	if cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); err == nil {
		p.args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	}
	return p, nil
}

// descendants is this process and every process below it.
func descendants() ([]proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]proc{}
	var self proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil {
			continue // exited meanwhile
		}
		children[p.ppid] = append(children[p.ppid], p)
		if pid == os.Getpid() {
			self = p
		}
	}
	if self.pid == 0 {
		return nil, fmt.Errorf("process %d is not in /proc", os.Getpid())
	}
	out := []proc{self}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i].pid]...)
	}
	return out, nil
}

// flagValue is the value of --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// peakRSS is VmHWM of a process: the most resident memory it ever had.
func peakRSS(pid int) (bytes int64, err error) {
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status VmHWM %q: %w", pid, rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// machineCPU is the busy and total time of all CPUs from /proc/stat: what
// everything on the machine used, the other users of a shared machine
// included.
func machineCPU() (busy, total time.Duration, err error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: %q", line)
	}
	var ticks []int64
	for _, f := range fields[1:] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %q", line)
		}
		ticks = append(ticks, n)
	}
	// user nice system idle iowait irq softirq steal guest guest_nice:
	// guest time is already counted in user.
	var sum, idle int64
	for i, n := range ticks[:min(len(ticks), 8)] {
		sum += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return ticksToDuration(sum - idle), ticksToDuration(sum), nil
}

func ticksToDuration(ticks int64) time.Duration {
	return time.Duration(ticks) * time.Second / clockTicks
}
