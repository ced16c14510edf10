package check

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Problems collects what is wrong with a configuration. The zero value is
// empty and ready to use.
type Problems struct {
	errs []error
}

// Add records err unless it is nil, so a Validate method's result or
// envflag's variable errors can be added as they come.
func (p *Problems) Add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// Addf records a problem that no rule below covers.
func (p *Problems) Addf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// NotEmpty requires a value.
func (p *Problems) NotEmpty(setting, value string) {
	if value == "" {
		p.Addf("%s: must not be empty", setting)
	}
}

// Positive requires a duration above zero.
func (p *Problems) Positive(setting string, d time.Duration) {
	if d <= 0 {
		p.Addf("%s=%s: must be positive", setting, d)
	}
}

// PositiveNumber requires a number above zero, such as a rate.
func (p *Problems) PositiveNumber(setting string, v float64) {
	if !(v > 0) {
		p.Addf("%s=%g: must be positive", setting, v)
	}
}

// AtLeastOne requires a count of one or more.
func (p *Problems) AtLeastOne(setting string, n int) {
	if n < 1 {
		p.Addf("%s=%d: must be at least 1", setting, n)
	}
}

// Address requires a listen address, [host]:port.
func (p *Problems) Address(setting, value string) {
	if !IsAddress(value) {
		p.Addf("%s=%q: must be [host]:port", setting, value)
	}
}

// IsAddress reports whether a is a listen address, [host]:port.
func IsAddress(a string) bool {
	_, _, err := net.SplitHostPort(a)
	return err == nil
}

// DNSLabel requires a Kubernetes namespace-style name.
func (p *Problems) DNSLabel(setting, value string) {
	if msgs := validation.IsDNS1123Label(value); len(msgs) > 0 {
		p.Addf("%s=%q: %s", setting, value, strings.Join(msgs, "; "))
	}
}

// DNSSubdomain requires a Kubernetes object name.
func (p *Problems) DNSSubdomain(setting, value string) {
	if msgs := validation.IsDNS1123Subdomain(value); len(msgs) > 0 {
		p.Addf("%s=%q: %s", setting, value, strings.Join(msgs, "; "))
	}
}

// File requires that path, when set, names something that exists. Only
// the path is quoted, never the file's content.
func (p *Problems) File(setting, path string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		p.Addf("%s: %w", setting, err)
	}
}

// Err is every problem joined, or nil when there is none.
func (p *Problems) Err() error {
	return errors.Join(p.errs...)
}

// Line is the one line a binary prints for a configuration that did not
// load: every problem, separated by "; ".
func Line(err error) string {
	return "invalid configuration: " + strings.ReplaceAll(err.Error(), "\n", "; ")
}

// ExitStatus reports a configuration that did not load and returns the
// process's exit status: 0 after -h (the flag package has printed the
// usage), else 2 after writing Line(err) to w.
func ExitStatus(w io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(w, Line(err))
	return 2
}
