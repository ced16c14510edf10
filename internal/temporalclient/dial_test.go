package temporalclient

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/testutil"
)

func TestDialBoundedOnSilentServer(t *testing.T) {
	// A listener that accepts and never speaks: the worst case for a
	// client, which would otherwise wait for the gRPC handshake forever.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()

	o := DefaultOptions()
	o.Address = ln.Addr().String()
	o.ConnectTimeout = 300 * time.Millisecond
	o.APIKey = "secret-key-that-must-not-leak"
	o.TLSServerName = "x" // an API key needs TLS anyway

	_, err = Dial(context.Background(), o, nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connecting to Temporal at "+o.Address+` (namespace "default", TLS true)`)
	assert.NotContains(t, err.Error(), o.APIKey)
}

func TestDialRejectsInvalidOptions(t *testing.T) {
	o := DefaultOptions()
	o.TLSCertFile = "/c.pem"
	_, err := Dial(context.Background(), o, nil, nil)
	require.EqualError(t, err, "temporal client options: TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: set both or neither")
}

func TestModuleDialsDevServerAndClosesOnStop(t *testing.T) {
	srv := devtemporal.New(t)
	o := DefaultOptions()
	o.Address = srv.FrontendHostPort()

	var c client.Client
	app := fxtest.New(t, fx.Supply(o), Module, fx.Populate(&c))
	app.RequireStart()
	_, err := c.CheckHealth(context.Background(), &client.CheckHealthRequest{})
	require.NoError(t, err)
	ns, err := c.WorkflowService().DescribeNamespace(context.Background(), &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	require.NoError(t, err)
	assert.Equal(t, "default", ns.NamespaceInfo.Name)
	app.RequireStop()

	_, err = c.CheckHealth(context.Background(), &client.CheckHealthRequest{})
	assert.Error(t, err, "the client must be closed when the app stops")
}

func TestModuleFailsStartWhenServerIsAbsent(t *testing.T) {
	addr := testutil.FreeAddress(t)
	o := DefaultOptions()
	o.Address = addr
	o.ConnectTimeout = 500 * time.Millisecond
	var c client.Client
	app := fx.New(fx.NopLogger, fx.Supply(o), Module, fx.Populate(&c))
	require.Error(t, app.Err())
	assert.Contains(t, app.Err().Error(), "connecting to Temporal at "+addr)
}
