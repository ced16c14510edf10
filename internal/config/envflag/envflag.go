// Package envflag binds command-line flags to environment variables with
// one precedence rule for every binary: a flag given on the command line
// wins over its variable, which wins over the default.
//
// The variable is applied through the flag's own flag.Value before the
// command line is parsed, so each setting has one parser and one place
// that names it in errors, and the flag set may be handed to any parser
// afterwards (the standard library's, or pflag's AddGoFlagSet for cobra).
// Secret settings are never shown as defaults.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Binder registers flags on a flag.FlagSet together with the environment
// variable each one reads.
type Binder struct {
	fs       *flag.FlagSet
	bindings []binding
}

type binding struct {
	flag, env string
}

// New returns a Binder that registers flags on fs.
func New(fs *flag.FlagSet) *Binder {
	return &Binder{fs: fs}
}

// String binds a string setting.
func (b *Binder) String(p *string, name, env, def, usage string) {
	b.fs.StringVar(p, name, def, b.usage(usage, env))
	b.bindings = append(b.bindings, binding{flag: name, env: env})
}

// Secret binds a string setting whose value must never be printed: it has
// no default, so usage has nothing to show, and setting a string cannot
// fail, so no error quotes it.
func (b *Binder) Secret(p *string, name, env, usage string) {
	b.String(p, name, env, "", usage)
}

// Duration binds a duration setting (Go syntax: 30s, 2m).
func (b *Binder) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	*p = def
	b.fs.Var((*durationValue)(p), name, b.usage(usage, env))
	b.bindings = append(b.bindings, binding{flag: name, env: env})
}

// Int binds an integer setting.
func (b *Binder) Int(p *int, name, env string, def int, usage string) {
	b.fs.IntVar(p, name, def, b.usage(usage, env))
	b.bindings = append(b.bindings, binding{flag: name, env: env})
}

// Float32 binds a number setting, such as a client's requests per second
// (client-go keeps those as float32).
func (b *Binder) Float32(p *float32, name, env string, def float32, usage string) {
	*p = def
	b.fs.Var((*float32Value)(p), name, b.usage(usage, env))
	b.bindings = append(b.bindings, binding{flag: name, env: env})
}

// Bool binds a boolean setting. On the command line the flag alone means
// true (--leader-elect, --leader-elect=false); the variable takes what
// strconv.ParseBool does (true, false, 1, 0, ...).
func (b *Binder) Bool(p *bool, name, env string, def bool, usage string) {
	*p = def
	b.fs.Var((*boolValue)(p), name, b.usage(usage, env))
	b.bindings = append(b.bindings, binding{flag: name, env: env})
}

func (b *Binder) usage(usage, env string) string {
	return usage + " [$" + env + "]"
}

// ApplyEnv sets every bound flag whose variable lookup finds (os.LookupEnv
// in production). Call it before parsing the command line so that flags
// win. Every invalid value is reported, each naming its variable.
func (b *Binder) ApplyEnv(lookup func(string) (string, bool)) error {
	var errs []error
	for _, x := range b.bindings {
		v, ok := lookup(x.env)
		if !ok {
			continue
		}
		if err := b.fs.Set(x.flag, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", x.env, v, err))
		}
	}
	return errors.Join(errs...)
}

// Parse applies the variables (ApplyEnv), then parses args, which must be
// flags only. err stops loading at once: a command line that does not
// parse, -h (flag.ErrHelp), or an argument that is not a flag, named after
// the flag set (the program). envErr lists the variables that did not
// parse, for the caller to report along with the rest of its checks.
func (b *Binder) Parse(args []string, lookup func(string) (string, bool)) (envErr, err error) {
	envErr = b.ApplyEnv(lookup)
	if err := b.fs.Parse(args); err != nil {
		return nil, err
	}
	if b.fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: the %s takes flags only", b.fs.Arg(0), b.fs.Name())
	}
	return envErr, nil
}

// durationValue is flag's duration with an error that says what is
// expected (the standard one says only "parse error").
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (e.g. 30s, 2m)")
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }

// boolValue is flag's bool with an error that says what is expected.
type boolValue bool

func (v *boolValue) Set(s string) error {
	x, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("not a boolean (true or false)")
	}
	*v = boolValue(x)
	return nil
}

func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }

// IsBoolFlag lets the flag stand alone on the command line.
func (v *boolValue) IsBoolFlag() bool { return true }

// float32Value is a finite number: strconv also parses NaN and Inf, which
// no setting means.
type float32Value float32

func (f *float32Value) Set(s string) error {
	v, err := strconv.ParseFloat(s, 32)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return errors.New("not a number (e.g. 50, 2.5)")
	}
	*f = float32Value(v)
	return nil
}

func (f *float32Value) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 32) }
