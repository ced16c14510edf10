// Package devtemporal starts the Temporal CLI's dev server (`temporal server
// start-dev`, built into ./bin by `make tools`) with machineflow's search
// attributes registered. Tests, `make histories` and the sandbox use it, so
// each of them talks to a real Temporal server rather than the in-process
// test environment.
package devtemporal

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/testenv"
)

// Options tune the dev server; the zero value is a headless, in-memory
// server on a free port with namespace "default".
type Options struct {
	// HostPort to bind the frontend to; empty picks a free port.
	HostPort string
	// Namespace to register; empty means "default".
	Namespace string
	// DBFile keeps state across restarts; empty keeps it in memory.
	DBFile string
	// UI enables the web UI, on UIPort when set.
	UI     bool
	UIPort string
	// Stdout and Stderr receive the server's output; nil discards it.
	Stdout, Stderr io.Writer
	// Logger is the SDK logger of the returned client; nil discards.
	Logger log.Logger
}

// CLIPath is the Temporal CLI: $TEMPORAL_CLI, else <repo>/bin/temporal.
func CLIPath() (string, error) {
	path := os.Getenv("TEMPORAL_CLI")
	if path == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			return "", err
		}
		path = filepath.Join(root, "bin", "temporal")
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("temporal CLI not found (run `make tools`): %w", err)
	}
	return path, nil
}

// SearchAttributes are machineflow's search attributes, for registration.
func SearchAttributes() temporal.SearchAttributes {
	var updates []temporal.SearchAttributeUpdate
	for _, name := range names.KeywordSearchAttributes() {
		updates = append(updates, temporal.NewSearchAttributeKeyKeyword(name).ValueSet(""))
	}
	return temporal.NewSearchAttributes(updates...)
}

// Start starts a dev server and waits until it accepts clients.
func Start(ctx context.Context, opts Options) (*testsuite.DevServer, error) {
	path, err := CLIPath()
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = discardLogger{}
	}
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:     path,
		ClientOptions:    &client.Options{HostPort: opts.HostPort, Namespace: opts.Namespace, Logger: logger},
		DBFilename:       opts.DBFile,
		EnableUI:         opts.UI,
		UIPort:           opts.UIPort,
		LogLevel:         "error",
		SearchAttributes: SearchAttributes(),
		Stdout:           writerOrDiscard(opts.Stdout),
		Stderr:           writerOrDiscard(opts.Stderr),
	})
	if err != nil {
		return nil, fmt.Errorf("starting Temporal dev server: %w", err)
	}
	return srv, nil
}

// New starts a headless in-memory dev server for a test and stops it when
// the test ends. With -short the test is skipped: it needs a real server.
func New(t testing.TB) *testsuite.DevServer {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: needs the Temporal dev server (bin/temporal); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stopping Temporal dev server: %v", err)
		}
	})
	return srv
}

func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// discardLogger keeps the SDK's client logs out of test output.
type discardLogger struct{}

func (discardLogger) Debug(string, ...any) {}
func (discardLogger) Info(string, ...any)  {}
func (discardLogger) Warn(string, ...any)  {}
func (discardLogger) Error(string, ...any) {}
