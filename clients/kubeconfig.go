package clients

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/machineflow/machineflow/internal/names"
)

// restConfigFromKubeconfig turns the kubeconfig of a Secret into a REST
// config. Every reason is ours and quotes nothing from data: client-go's
// parse and validation errors can echo the input, tokens included, so they
// are dropped rather than wrapped.
func restConfigFromKubeconfig(config string, secret types.NamespacedName, data []byte) (*rest.Config, error) {
	invalid := func(reason string) error {
		return &Error{
			Kind:   ErrInvalidKubeconfig,
			Config: config,
			Reason: fmt.Sprintf("Secret %s key %q %s", secret, names.KubeconfigSecretKey, reason),
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid("is empty")
	}
	raw, err := clientcmd.Load(data)
	if err != nil {
		return nil, invalid("does not parse as a kubeconfig (parser message withheld because it may quote Secret data)")
	}
	contextName := raw.CurrentContext
	if contextName == "" && len(raw.Contexts) == 1 {
		for name := range raw.Contexts {
			contextName = name
		}
	}
	if contextName == "" {
		return nil, invalid("sets no current-context and does not have exactly one context")
	}
	kctx := raw.Contexts[contextName]
	if kctx == nil {
		return nil, invalid("names a current-context that it does not define")
	}
	cluster := raw.Clusters[kctx.Cluster]
	if cluster == nil || cluster.Server == "" {
		return nil, invalid("has no cluster with a server address for its current context")
	}
	auth := raw.AuthInfos[kctx.AuthInfo]
	if auth != nil && (auth.Exec != nil || auth.AuthProvider != nil) {
		// Running a command named by whoever may write a Secret would turn
		// Secret write access into code execution in the worker.
		return nil, invalid("uses an exec or auth-provider plugin, which machineflow does not run")
	}
	if cluster.CertificateAuthority != "" || (auth != nil && (auth.TokenFile != "" || auth.ClientCertificate != "" || auth.ClientKey != "")) {
		// A kubeconfig in a Secret has no files of its own: a path names a
		// file of the worker, such as its service account token, which
		// would then be sent to the server the Secret names.
		return nil, invalid("names a file (certificate-authority, client-certificate, client-key or tokenFile), " +
			"which machineflow does not read: embed the contents in the *-data fields or token instead")
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, contextName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, invalid("is rejected by client-go (message withheld because it may quote Secret data)")
	}
	return cfg, nil
}
