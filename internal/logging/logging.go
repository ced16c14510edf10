// Package logging builds the process's one structured logger and hands it
// to every library in the form it expects: *slog.Logger for our code, a
// logr.Logger for controller-runtime and for client-go (through klog),
// log.Logger for the Temporal SDK and an fxevent.Logger for fx itself. All
// of them write through the same slog.Handler, so a deployment chooses JSON
// or text once and every line follows it.
//
// Keys are lowerCamel everywhere: the handler rewrites the Temporal SDK's
// UpperCamel keys (WorkflowID, TaskQueue) on the way out, so that log
// queries do not need to know which library wrote a line.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-logr/logr"
	tlog "go.temporal.io/sdk/log"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"k8s.io/klog/v2"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Formats.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// Options choose the output of the logger.
type Options struct {
	// Format is json or text (LOG_FORMAT).
	Format string
	// Level is debug, info, warn or error, optionally with an offset as
	// slog parses it (LOG_LEVEL).
	Level string
}

// DefaultOptions log JSON at info.
func DefaultOptions() Options { return Options{Format: FormatJSON, Level: "info"} }

// Validate names the setting that is wrong.
func (o Options) Validate() error {
	if _, err := o.level(); err != nil {
		return err
	}
	switch o.Format {
	case FormatJSON, FormatText:
		return nil
	}
	return fmt.Errorf("LOG_FORMAT=%q: must be %s or %s", o.Format, FormatJSON, FormatText)
}

func (o Options) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(o.Level)); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL=%q: must be debug, info, warn or error", o.Level)
	}
	return l, nil
}

// NewHandler returns the handler every logger of the process writes through.
func NewHandler(w io.Writer, o Options) (slog.Handler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	level, _ := o.level() // validated above
	ho := &slog.HandlerOptions{Level: level, ReplaceAttr: lowerCamelKeys}
	if o.Format == FormatText {
		return slog.NewTextHandler(w, ho), nil
	}
	return slog.NewJSONHandler(w, ho), nil
}

// lowerCamelKeys rewrites a key's leading upper-case run: WorkflowID
// becomes workflowID, ID becomes id, URLPath becomes urlPath.
func lowerCamelKeys(_ []string, a slog.Attr) slog.Attr {
	a.Key = lowerCamel(a.Key)
	return a
}

func lowerCamel(key string) string {
	r, _ := utf8.DecodeRuneInString(key)
	if !unicode.IsUpper(r) {
		return key
	}
	runes := []rune(key)
	n := 0
	for n < len(runes) && unicode.IsUpper(runes[n]) {
		n++
	}
	// In "URLPath" the P starts the next word; in "ID" every letter is
	// the first word's.
	if n > 1 && n < len(runes) && unicode.IsLower(runes[n]) {
		n--
	}
	return strings.ToLower(string(runes[:n])) + string(runes[n:])
}

// Loggers are the process's loggers, one per API, sharing a handler.
type Loggers struct {
	fx.Out

	Slog     *slog.Logger
	Logr     logr.Logger
	Temporal tlog.Logger
}

// New builds the loggers on w.
func New(w io.Writer, o Options) (Loggers, error) {
	h, err := NewHandler(w, o)
	if err != nil {
		return Loggers{}, err
	}
	l := slog.New(h)
	return Loggers{Slog: l, Logr: logr.FromSlogHandler(h), Temporal: tlog.NewStructuredLogger(l)}, nil
}

// Module provides the loggers on standard error from the Options in the
// graph and makes them the globals that libraries log through (SetGlobal).
var Module = fx.Module("logging",
	fx.Provide(func(o Options) (Loggers, error) { return New(os.Stderr, o) }),
	fx.Invoke(SetGlobal),
)

// SetGlobal makes s and l the loggers of the packages that log through
// globals: slog's default (and so the standard log package),
// controller-runtime's, and klog's, which client-go uses (leader election,
// reflectors, client-side throttling) and which would otherwise print its
// own unstructured lines on standard error.
func SetGlobal(s *slog.Logger, l logr.Logger) {
	slog.SetDefault(s)
	crlog.SetLogger(l)
	// Contextual: klog.FromContext and klog.Background, which newer
	// client-go code calls, return l itself, keys and values intact.
	klog.SetLoggerWithOptions(l, klog.ContextualLogger(true))
}

// FxLogger is for fx.WithLogger: fx's own events become lines of the
// process's logger, at debug level for the routine ones.
func FxLogger(l *slog.Logger) fxevent.Logger {
	fl := &fxevent.SlogLogger{Logger: l.With("component", "fx")}
	fl.UseLogLevel(slog.LevelDebug)
	return fl
}
