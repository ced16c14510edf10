package temporalclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/machineflow/machineflow/internal/config/envflag"
)

// Defaults of Options.
const (
	DefaultAddress        = "localhost:7233"
	DefaultNamespace      = "default"
	DefaultConnectTimeout = 10 * time.Second
)

// Options say how to reach a Temporal frontend. Each field has a flag and
// an environment variable (Bind); the variable names are the Temporal
// CLI's where it has one.
type Options struct {
	// Address is the frontend's host:port (TEMPORAL_ADDRESS).
	Address string
	// Namespace is the Temporal namespace (TEMPORAL_NAMESPACE).
	Namespace string
	// TLSCAFile is a PEM bundle of the CAs that may sign the server's
	// certificate (TEMPORAL_TLS_CA); empty means the system pool.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are the client certificate and key for
	// mTLS (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY); both or neither.
	TLSCertFile string
	TLSKeyFile  string
	// TLSServerName overrides the name checked in the server's
	// certificate (TEMPORAL_TLS_SERVER_NAME).
	TLSServerName string
	// APIKey authenticates to Temporal Cloud (TEMPORAL_API_KEY). It implies
	// TLS. It is a secret: never logged or printed.
	APIKey string
	// ConnectTimeout bounds Dial (TEMPORAL_CONNECT_TIMEOUT).
	ConnectTimeout time.Duration
}

// DefaultOptions are a local dev server without TLS.
func DefaultOptions() Options {
	return Options{Address: DefaultAddress, Namespace: DefaultNamespace, ConnectTimeout: DefaultConnectTimeout}
}

// Bind registers the options' flags and variables on b with the defaults
// of DefaultOptions.
func (o *Options) Bind(b *envflag.Binder) {
	d := DefaultOptions()
	b.String(&o.Address, "temporal-address", "TEMPORAL_ADDRESS", d.Address, "Temporal frontend host:port")
	b.String(&o.Namespace, "temporal-namespace", "TEMPORAL_NAMESPACE", d.Namespace, "Temporal namespace")
	b.String(&o.TLSCAFile, "temporal-tls-ca", "TEMPORAL_TLS_CA", "", "PEM file of the CAs trusted for the Temporal server's certificate (enables TLS)")
	b.String(&o.TLSCertFile, "temporal-tls-cert", "TEMPORAL_TLS_CERT", "", "PEM client certificate for mTLS (needs --temporal-tls-key)")
	b.String(&o.TLSKeyFile, "temporal-tls-key", "TEMPORAL_TLS_KEY", "", "PEM client key for mTLS (needs --temporal-tls-cert)")
	b.String(&o.TLSServerName, "temporal-tls-server-name", "TEMPORAL_TLS_SERVER_NAME", "", "server name to verify in the Temporal server's certificate (enables TLS)")
	b.Secret(&o.APIKey, "temporal-api-key", "TEMPORAL_API_KEY", "API key for Temporal Cloud (enables TLS; prefer the variable: flags show in process lists)")
	b.Duration(&o.ConnectTimeout, "temporal-connect-timeout", "TEMPORAL_CONNECT_TIMEOUT", d.ConnectTimeout, "how long to wait for the Temporal server at start-up")
}

// TLSEnabled reports whether the connection uses TLS.
func (o Options) TLSEnabled() bool {
	return o.TLSCAFile != "" || o.TLSCertFile != "" || o.TLSServerName != "" || o.APIKey != ""
}

// Validate reports every invalid option, each naming its variable. It
// does not read the TLS files; ClientOptions does.
func (o Options) Validate() error {
	var errs []error
	if host, port, err := net.SplitHostPort(o.Address); err != nil || host == "" || !validPort(port) {
		errs = append(errs, fmt.Errorf("TEMPORAL_ADDRESS=%q: must be host:port", o.Address))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("TEMPORAL_NAMESPACE: must not be empty"))
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: set both or neither"))
	}
	if o.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("TEMPORAL_CONNECT_TIMEOUT=%s: must be positive", o.ConnectTimeout))
	}
	return errors.Join(errs...)
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// ClientOptions validates o, loads the TLS files and returns the SDK's
// options. logger and metrics may be nil (the SDK's defaults).
func (o Options) ClientOptions(logger log.Logger, metrics client.MetricsHandler) (client.Options, error) {
	if err := o.Validate(); err != nil {
		return client.Options{}, err
	}
	opts := client.Options{
		HostPort:       o.Address,
		Namespace:      o.Namespace,
		Logger:         logger,
		MetricsHandler: metrics,
	}
	if o.TLSEnabled() {
		tlsConfig, err := o.tlsConfig()
		if err != nil {
			return client.Options{}, err
		}
		opts.ConnectionOptions.TLS = tlsConfig
	}
	if o.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(o.APIKey)
	}
	return opts, nil
}

func (o Options) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.TLSServerName}
	if o.TLSCAFile != "" {
		pem, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CA: reading the CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TEMPORAL_TLS_CA: %s holds no PEM certificate", o.TLSCAFile)
		}
		c.RootCAs = pool
	}
	if o.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: loading the client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
