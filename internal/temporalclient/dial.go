package temporalclient

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
)

// Dial connects to the Temporal frontend of o and checks that it answers,
// giving up after o.ConnectTimeout (or when ctx ends). The error names the
// address and namespace, never the API key.
func Dial(ctx context.Context, o Options, logger log.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts, err := o.ClientOptions(logger, metrics)
	if err != nil {
		return nil, fmt.Errorf("temporal client options: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to Temporal at %s (namespace %q, TLS %t): %w", o.Address, o.Namespace, o.TLSEnabled(), err)
	}
	return c, nil
}
