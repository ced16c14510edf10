package temporalclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/config/envflag"
)

func parse(t *testing.T, env map[string]string, args ...string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	b := envflag.New(fs)
	o.Bind(b)
	if err := b.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		return o, err
	}
	require.NoError(t, fs.Parse(args))
	return o, o.Validate()
}

func TestBindDefaults(t *testing.T) {
	o, err := parse(t, nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultOptions(), o)
	assert.False(t, o.TLSEnabled())
}

func TestBindFlagsWinOverEnv(t *testing.T) {
	o, err := parse(t, map[string]string{
		"TEMPORAL_ADDRESS":         "env-host:7233",
		"TEMPORAL_NAMESPACE":       "env-ns",
		"TEMPORAL_TLS_SERVER_NAME": "temporal.example.com",
		"TEMPORAL_CONNECT_TIMEOUT": "3s",
	}, "--temporal-address", "flag-host:443")
	require.NoError(t, err)
	assert.Equal(t, "flag-host:443", o.Address)
	assert.Equal(t, "env-ns", o.Namespace)
	assert.Equal(t, "temporal.example.com", o.TLSServerName)
	assert.Equal(t, 3*time.Second, o.ConnectTimeout)
	assert.True(t, o.TLSEnabled())
}

func TestValidateNamesTheSetting(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"address without port": {map[string]string{"TEMPORAL_ADDRESS": "localhost"}, `TEMPORAL_ADDRESS="localhost": must be host:port`},
		"port out of range":    {map[string]string{"TEMPORAL_ADDRESS": "h:70000"}, `TEMPORAL_ADDRESS="h:70000": must be host:port`},
		"empty namespace":      {map[string]string{"TEMPORAL_NAMESPACE": ""}, "TEMPORAL_NAMESPACE: must not be empty"},
		"cert without key":     {map[string]string{"TEMPORAL_TLS_CERT": "/c.pem"}, "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: set both or neither"},
		"key without cert":     {map[string]string{"TEMPORAL_TLS_KEY": "/k.pem"}, "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: set both or neither"},
		"zero timeout":         {map[string]string{"TEMPORAL_CONNECT_TIMEOUT": "0s"}, "TEMPORAL_CONNECT_TIMEOUT=0s: must be positive"},
		"timeout not duration": {map[string]string{"TEMPORAL_CONNECT_TIMEOUT": "soon"}, `TEMPORAL_CONNECT_TIMEOUT="soon": not a duration (e.g. 30s, 2m)`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, tc.env)
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestAPIKeyImpliesTLSAndIsNeverShown(t *testing.T) {
	const key = "tmprl-secret-api-key-value"
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.Bind(envflag.New(fs))
	assert.Empty(t, fs.Lookup("temporal-api-key").DefValue)

	o, err := parse(t, map[string]string{"TEMPORAL_API_KEY": key, "TEMPORAL_ADDRESS": "bad"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), key)
	o.Address = "ns.tmprl.cloud:7233"
	require.NoError(t, o.Validate())
	assert.True(t, o.TLSEnabled())
	opts, err := o.ClientOptions(nil, nil)
	require.NoError(t, err)
	assert.NotNil(t, opts.Credentials)
	require.NotNil(t, opts.ConnectionOptions.TLS)
}

func TestClientOptionsLoadsTLSFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	o := DefaultOptions()
	o.TLSCAFile, o.TLSCertFile, o.TLSKeyFile, o.TLSServerName = certFile, certFile, keyFile, "temporal.internal"

	opts, err := o.ClientOptions(nil, nil)
	require.NoError(t, err)
	tc := opts.ConnectionOptions.TLS
	require.NotNil(t, tc)
	assert.Equal(t, "temporal.internal", tc.ServerName)
	assert.Len(t, tc.Certificates, 1)
	assert.NotNil(t, tc.RootCAs)
	assert.Nil(t, opts.Credentials)

	t.Run("missing CA file", func(t *testing.T) {
		o := o
		o.TLSCAFile = filepath.Join(dir, "absent.pem")
		_, err := o.ClientOptions(nil, nil)
		require.ErrorContains(t, err, "TEMPORAL_TLS_CA: reading the CA bundle")
	})
	t.Run("CA file without PEM", func(t *testing.T) {
		o := o
		o.TLSCAFile = filepath.Join(dir, "junk.pem")
		require.NoError(t, os.WriteFile(o.TLSCAFile, []byte("not pem"), 0o600))
		_, err := o.ClientOptions(nil, nil)
		require.ErrorContains(t, err, "TEMPORAL_TLS_CA: "+o.TLSCAFile+" holds no PEM certificate")
	})
	t.Run("key that does not match", func(t *testing.T) {
		o := o
		_, otherKey := writeSelfSigned(t, t.TempDir())
		o.TLSKeyFile = otherKey
		_, err := o.ClientOptions(nil, nil)
		require.ErrorContains(t, err, "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: loading the client certificate")
		key, readErr := os.ReadFile(otherKey)
		require.NoError(t, readErr)
		assert.NotContains(t, err.Error(), string(key[40:80]))
	})
}

func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "temporal.internal"},
		DNSNames:              []string{"temporal.internal"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}
